"""Concurrent reads of the same shape answered by one query ("coalescing", as a DataLoader does).

Why: when the minute-quantized ranges move on, or the API starts, every dashboard's series miss
the answer cache at once: the same query for each journey, one after the other or all together
on a few cores. Most of a small query's cost is fixed (planning, index analysis, the round
trip), so one query for five journeys costs about twice one journey's, not five times.

How (no timer, nothing added when it is quiet): `Coalescer.get` runs a shape's batch at once
unless a batch of that shape is already running; then the caller joins the next batch of that
shape, which runs when the running one ends, with everything that joined meanwhile. Members
are answered from the batch's results (``default`` for one the batch did not return); an error
is raised to every member.

The callers are the answer cache's queries (`journeylens.api.queries`): one member per cache
key, so a member is in at most one batch at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

M = TypeVar("M", bound=Hashable)
V = TypeVar("V")
Fetch = Callable[[Sequence[M]], Mapping[M, V]]


@dataclass
class _Batch(Generic[M, V]):
    members: list[M] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    results: Mapping[M, V] | None = None
    error: BaseException | None = None


class Coalescer(Generic[M, V]):
    """Batches of members by shape; at most one running batch per shape."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._open: dict[Hashable, _Batch[M, V]] = {}
        self._running: set[Hashable] = set()
        self.batches = 0  # batches run, for tests and diagnostics

    def get(self, shape: Hashable, member: M, fetch: Fetch[M, V], default: V) -> V:
        """``member``'s answer from ``fetch(members)``, run once for the members of a batch."""
        with self._lock:
            batch = self._open.get(shape)
            leader = batch is None
            if batch is None:
                batch = self._open[shape] = _Batch()
            if member not in batch.members:
                batch.members.append(member)
            if leader:
                while shape in self._running:  # members join while the running batch runs
                    self._lock.wait()
                del self._open[shape]  # closed: later callers open the next batch
                self._running.add(shape)
                self.batches += 1
        if not leader:
            batch.done.wait()
        else:
            try:
                batch.results = fetch(list(batch.members))
            except BaseException as exc:
                batch.error = exc
            finally:
                with self._lock:
                    self._running.discard(shape)
                    self._lock.notify_all()
                batch.done.set()
        if batch.error is not None:
            raise batch.error
        assert batch.results is not None
        return batch.results.get(member, default)
