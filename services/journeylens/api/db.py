"""ClickHouse access for the API: one client per worker thread, parameterized queries only.

Routes are plain ``def`` functions, so FastAPI runs them (and their blocking ClickHouse calls)
in its threadpool. clickhouse-connect clients keep a session per client, which must not run
two queries at once, so each thread gets its own client from the factory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from journeylens.storage.client import Client

ClientFactory = Callable[[], Client]
Row = dict[str, Any]
Settings = Mapping[str, Any]


class Database:
    """Runs read queries with bound parameters; ``{name:Type}`` placeholders only."""

    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[Client] = []

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def rows(
        self, sql: str, parameters: Mapping[str, Any], settings: Settings | None = None
    ) -> list[Row]:
        """The rows of ``sql``; ``settings`` are ClickHouse settings for this query only."""
        result = self.client().query(
            sql, parameters=dict(parameters), settings=dict(settings) if settings else None
        )
        return list(result.named_results())

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
