"""A small in-process cache of read answers: time-to-live, bounded, one query per key at a time.

Why: under 20 concurrent clients on two cores the API spends its time queueing for ClickHouse,
mostly running the same few queries (the health of every journey, the same metric of the same
journey) over and over. Within a few seconds their answers cannot differ by more than the
windows inserted meanwhile, and a window is inserted once a minute per series.

Correctness rules (the callers in `journeylens.api.queries` follow them):

- A key holds everything the query depends on: the query kind, every parameter, and the time
  bounds *as the SQL receives them*. Callers quantize the bounds before building both the key
  and the SQL parameters (a range ending at 12:00:17 and one ending at 12:00:43 ask for the same
  windows, so the SQL is given the same bound), so one entry serves every request that would
  have run the same SQL.
- An entry lives ``ttl_s`` from the moment its query started, so an answer is never older than
  that: a window inserted into ClickHouse shows up within ``ttl_s`` (5 s by default, well within
  its minute). Nothing is invalidated explicitly; the API never writes.
- One query per key at a time ("single flight"): when an entry is missing or expired, the first
  request runs the query and concurrent requests for the same key wait for its answer instead of
  running it again. Errors are not cached; every waiter sees the error.
- At most ``max_entries`` keys, least recently used out first.

``ttl_s = 0`` disables caching (every call runs its query).

`ResultCache.get_async` is the same for ``async`` routes: a fresh answer is returned on the event
loop (no thread hop, which under load costs more than the lookup itself); only a miss goes to a
worker thread, where it runs (or waits for) the query as `ResultCache.get` does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio.to_thread

T = TypeVar("T")
DEFAULT_TTL_S = 5.0
# An entry is one query's answer: a 30-day timeseries query (up to 720 hourly buckets of up to
# 8 metrics, with the series asked for and their JSON) holds ~0.2 MB: ~50 MB at most. An entry
# is worth keeping for ttl_s only, and a few seconds see far fewer distinct keys than this.
DEFAULT_MAX_ENTRIES = 256


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    waits: int
    entries: int


class ResultCache:
    """Answers by key, each kept ``ttl_s`` seconds from when its query started."""

    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s must be >= 0 and max_entries >= 1")
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._hits = self._misses = self._waits = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def fresh(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, answer)`` when ``key`` holds an answer within its time-to-live, else
        ``(False, None)``; never runs a query nor waits for one."""
        if not self.enabled:
            return False, None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                return False, None
            self._entries.move_to_end(key)
            self._hits += 1
            return True, entry[1]

    async def get_async(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`get` for the event loop: a fresh answer at once, else `get` in a worker thread."""
        found, value = self.fresh(key)
        if found:
            return cast("T", value)
        return await anyio.to_thread.run_sync(self.get, key, compute)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached answer for ``key``, or ``compute()`` (run once for concurrent callers)."""
        if not self.enabled:
            return compute()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self._clock():
                self._entries.move_to_end(key)
                self._hits += 1
                return cast("T", entry[1])
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self._misses += 1
            else:
                self._waits += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return cast("T", flight.value)
        started = self._clock()
        try:
            value = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            with self._lock:
                self._entries[key] = (started + self.ttl_s, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._waits, len(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
