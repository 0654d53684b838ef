"""ClickHouse access for the API: a bounded pool of clients, parameterized queries only.

Queries run in worker threads (FastAPI's threadpool). A clickhouse-connect client keeps an HTTP
session that must not run two queries at once, so a query borrows a client from the pool for
its duration and gives it back. The pool holds at most ``max_clients``: that is also the most
queries this process runs at once, whatever the number of threads. Why bounded:

- ClickHouse answers a burst of N small queries on a few cores no faster than one after the
  other, but N at once share the cores and every one of them finishes late; with a bound, the
  first ones finish early and the rest queue (first come, first served).
- Making a client costs a few round trips (clickhouse-connect asks the server for its version,
  time zone and settings). One client per thread made every new threadpool thread pay that,
  under load, on the request that happened to land on it.

Clients are made lazily, when every pooled client is busy and the bound allows one more, and
`Database.fill` makes them all up front (the app calls it at start-up, like a connection pool's
minimum size), so the first burst of requests does not pay for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from journeylens.storage.client import Client

ClientFactory = Callable[[], Client]
Row = dict[str, Any]
Settings = Mapping[str, Any]
DEFAULT_MAX_CLIENTS = 8


class Database:
    """Runs read queries with bound parameters; ``{name:Type}`` placeholders only."""

    def __init__(self, factory: ClientFactory, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        if max_clients < 1:
            raise ValueError("max_clients must be >= 1")
        self._factory = factory
        self._max_clients = max_clients
        self._slots = threading.BoundedSemaphore(max_clients)
        self._lock = threading.Lock()
        self._idle: list[Client] = []
        self._clients: list[Client] = []

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A client for this thread's use until the block ends (waits while all are busy)."""
        with self._slots:
            with self._lock:
                client = self._idle.pop() if self._idle else None
            if client is None:
                client = self._factory()
                with self._lock:
                    self._clients.append(client)
            try:
                yield client
            finally:
                with self._lock:
                    if any(c is client for c in self._clients):  # not closed meanwhile
                        self._idle.append(client)

    def fill(self) -> int:
        """Make every client the bound allows now; the number made. Best effort: a failure
        (ClickHouse not reachable yet) is raised, and later queries make clients as needed."""
        made: list[Client] = []
        with self._lock:
            missing = self._max_clients - len(self._clients)
        try:
            for _ in range(max(0, missing)):
                made.append(self._factory())
        finally:
            with self._lock:
                self._clients.extend(made)
                self._idle.extend(made)
        return len(made)

    def rows(
        self, sql: str, parameters: Mapping[str, Any], settings: Settings | None = None
    ) -> list[Row]:
        """The rows of ``sql``; ``settings`` are ClickHouse settings for this query only."""
        with self.client() as client:
            result = client.query(
                sql, parameters=dict(parameters), settings=dict(settings) if settings else None
            )
            return list(result.named_results())

    def close(self) -> None:
        """Close the pooled clients (a query after this makes new ones, as at the start)."""
        with self._lock:
            clients, self._clients, self._idle = self._clients, [], []
        for client in clients:
            client.close()
