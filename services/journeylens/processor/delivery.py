"""Batch delivery: fetched records of the input topics go to the worker a batch at a time.

Faust hands every message through conductor → channel queue → stream → take buffer, a dozen
tasks and callbacks per message, which caps a worker at a few thousand events/s whatever it
does with them. :class:`BatchConsumer` keeps Faust's fetch loop (``_drain_messages``) record
for record — read offsets, gap tracking, flow control, active/paused partitions, generation
checks, seek on stopped flow — but hands each fetched batch of the topics a :class:`Handoff`
claims to that handoff in one step. Records of every other topic (the tables' changelogs
during recovery) still take Faust's per-message path.

Faust's offset bookkeeping is kept as is: a message is tracked as unacked (what
``Consumer.wait_empty`` waits for before a rebalance or shutdown goes on) from the moment it is
queued, and acked (`BatchConsumer.ack_many`, ``Consumer.ack`` for a whole batch) once its batch
was processed, so only acked, contiguous offsets are committed. Faust clears the handoff along
with its own agent buffers (``app.flow_control.clear()``) when partitions are revoked and again
when the flow resumes after the rebalance, which is *after* the seek to the committed offsets:
the clear drops the messages of an earlier consumer generation (fetched again from the
committed offsets) but keeps those fetched since the seek, which nothing would fetch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify
from mode.utils.queues import FlowControlEvent

log = logging.getLogger(__name__)


class Handoff:
    """Fetched batches of some topics, waiting for the worker.

    ``put`` waits while ``max_events`` or ``max_bytes`` of message values are queued (the next
    batch, fetched while the worker processes one and stores the one before: three batches in
    memory); ``take`` returns up to ``max_events`` messages and ``max_bytes`` (at least one
    message) once that much is queued or ``within_s`` passed since the previous take (so a
    quiet stream still makes at most one batch per ``within_s``). The byte bound keeps a
    worker's memory in check when messages are larger than usual (many errors or resources).
    """

    def __init__(
        self,
        topics: Iterable[str],
        flow_control: FlowControlEvent,
        unacked: Any,
        *,
        max_events: int,
        within_s: float,
        max_bytes: int | None = None,
        generation: Callable[[], int] | None = None,
    ) -> None:
        self.topics = frozenset(topics)
        self._generation = generation
        """The consumer's current generation (None: `clear` drops every queued message)."""
        self._flow_control = flow_control
        self._unacked = unacked
        """The consumer's set of unacked messages (``Consumer.unacked``, a WeakSet)."""
        self.max_events = max(1, max_events)
        self.max_bytes = max(1, max_bytes) if max_bytes is not None else None
        self.within_s = within_s
        self._batches: deque[list[Message]] = deque()
        self._queued = 0
        self._queued_bytes = 0
        self._changed = asyncio.Event()
        self._last_take = time.monotonic()
        # Cleared by Faust together with the agents' buffers when partitions are revoked.
        flow_control.manage_queue(cast(Any, self))

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def _full(self) -> bool:
        return self._queued >= self.max_events or (
            self.max_bytes is not None and self._queued_bytes >= self.max_bytes
        )

    async def put(self, batch: list[Message]) -> None:
        while self._full():
            self._changed.clear()
            await self._changed.wait()
        if not self._flow_control.is_active():
            return  # a rebalance or shutdown started: fetched again from the committed offsets
        add = self._unacked.add
        for message in batch:
            add(message)
        self._batches.append(batch)
        self._queued += len(batch)
        self._queued_bytes += _size(batch)
        self._changed.set()

    async def take(self) -> list[Message]:
        """Up to ``max_events`` messages and ``max_bytes`` (at least one), in fetch order."""
        while not self._full():
            wait: float | None = None
            if self._queued:
                wait = self._last_take + self.within_s - time.monotonic()
                if wait <= 0:
                    break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
        self._last_take = time.monotonic()
        out: list[Message] = []
        room = self.max_events
        budget = self.max_bytes
        taken_bytes = 0
        while self._batches and room:
            head = self._batches[0]
            n = min(len(head), room)
            if budget is not None:
                if budget <= 0:
                    break
                size, n = _fit(head, n, budget, first=not out)
                if not n:
                    break
                budget -= size
            else:
                size = _size(head[:n])
            taken_bytes += size
            if n == len(head):
                out.extend(self._batches.popleft())
            else:
                out.extend(head[:n])
                self._batches[0] = head[n:]
            room = self.max_events - len(out)
        self._queued -= len(out)
        self._queued_bytes -= taken_bytes
        self._changed.set()
        return out

    def drop(self, messages: Iterable[Message]) -> None:
        """Forget messages that will not be processed (not acked: they are read again)."""
        discard = self._unacked.discard
        for message in messages:
            discard(message)

    def drop_all(self) -> None:
        """Forget every queued message (the worker stops: they are read again on restart)."""
        for batch in self._batches:
            self.drop(batch)
        self._batches.clear()
        self._queued = 0
        self._queued_bytes = 0
        self._changed.set()

    def clear(self) -> None:
        """Drop the queued messages fetched before the current consumer generation."""
        current = self._generation() if self._generation is not None else None
        kept: deque[list[Message]] = deque()
        for batch in self._batches:
            fresh = [m for m in batch if current is not None and m.generation_id == current]
            if len(fresh) < len(batch):
                self.drop([m for m in batch if current is None or m.generation_id != current])
            if fresh:
                kept.append(fresh)
        self._batches = kept
        self._queued = sum(len(batch) for batch in kept)
        self._queued_bytes = sum(_size(batch) for batch in kept)
        self._changed.set()


def _size(messages: Iterable[Message]) -> int:
    return sum(len(m.value) for m in messages if m.value)


def _fit(messages: list[Message], n: int, budget: int, *, first: bool) -> tuple[int, int]:
    """How many of the first ``n`` messages fit in ``budget`` bytes (at least one when
    ``first``: a message larger than the budget still goes, alone), and their size."""
    used = taken = 0
    for message in messages[:n]:
        size = len(message.value) if message.value else 0
        if used + size > budget and (taken or not first):
            break
        used += size
        taken += 1
    return used, taken


class BatchApp(faust.App):
    """A Faust app whose consumer hands fetched batches of some topics to a :class:`Handoff`."""

    _batch_spec: tuple[frozenset[str], int, float, int | None] | None = None
    _handoff: Handoff | None = None

    def deliver_in_batches(
        self,
        topics: Iterable[str],
        max_events: int,
        within_s: float,
        max_bytes: int | None = None,
    ) -> None:
        """Route these topics through :meth:`handoff` (call before the worker starts)."""
        self._batch_spec = (frozenset(topics), max_events, within_s, max_bytes)

    def handoff(self) -> Handoff | None:
        """The handoff (created on first use, inside the running loop)."""
        if self._handoff is None and self._batch_spec is not None:
            topics, max_events, within_s, max_bytes = self._batch_spec
            self._handoff = Handoff(
                topics,
                self.flow_control,
                self.consumer.unacked,
                max_events=max_events,
                within_s=within_s,
                max_bytes=max_bytes,
                generation=lambda: self.consumer_generation_id,
            )
        return self._handoff

    def _new_consumer(self) -> BatchConsumer:
        return BatchConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
        )


class BatchConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer, with a fetch loop that delivers the handoff's topics in bulk."""

    def ack_many(self, messages: Iterable[Message]) -> int:
        """`Consumer.ack` of every message, under one lock and with one wake-up.

        Unlike ``Consumer.ack``, every message given is done with (no longer unacked), also one
        whose offset was acked or committed already: a record fetched twice (once before the
        seek that ends a rebalance, once after) is processed twice, the second time as a
        replay, and must not keep ``Consumer.wait_empty`` waiting forever.
        """
        acked = 0
        with ack_lock:
            acks_enabled_for = self.app.topics.acks_enabled_for
            committed_offsets = self._committed_offset
            acked_index = self._acked_index
            acked_offsets = self._acked
            discard = self._unacked_messages.discard
            for message in messages:
                discard(message)
                if message.acked:
                    continue
                message.acked = True
                if not acks_enabled_for(message.topic):
                    continue
                tp = message.tp
                offset = message.offset
                committed = committed_offsets[tp]
                if committed is None or offset >= committed:
                    index = acked_index[tp]
                    if offset not in index:
                        index.add(offset)
                        acked_offsets[tp].append(offset)
                        acked += 1
            self._n_acked += acked
            notify(self._waiting_for_ack)
        return acked

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs Kafka
        handoff = cast(BatchApp, self.app).handoff()
        if handoff is None:
            await super()._drain_messages(fetcher)
            return
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = self._to_message
        monitor = self.app.monitor
        batch_topics = handoff.topics
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        log.warning("exception performing seek when flow not active %r", exc)
                    continue
                generation_id = self.app.consumer_generation_id
                batch: list[Message] = []
                now = time.monotonic()
                for tp in records:
                    monitor.track_tp_end_offset(tp, self.highwater(tp))
                for tp, record in self.scheduler.iterate(records):
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        break
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    offset = record.offset
                    r_offset = read_offset[tp]
                    if r_offset is not None and offset < r_offset:
                        continue  # read already (Faust logs it as DROPPED MESSAGE)
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    message = to_message(tp, record)
                    if tp.topic in batch_topics:
                        batch.append(message)
                        monitor.stream_inbound_time[tp] = now
                    else:
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                    read_offset[tp] = offset
                if batch and self.flow_active:
                    await self.wait_first(handoff.put(batch), self.suspend_flow.wait())
                del batch
                commit_every = self._commit_every
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)
