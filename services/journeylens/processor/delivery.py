"""Batch delivery: fetched records of the input topics go to the worker a batch at a time.

Faust hands every message through conductor → channel queue → stream → take buffer, a dozen
tasks and callbacks per message, which caps a worker at a few thousand events/s whatever it
does with them. :class:`BatchConsumer` keeps Faust's fetch loop (``_drain_messages``) record
for record — read offsets, gap tracking, flow control, active/paused partitions, generation
checks, seek on stopped flow — but hands the records of the handoff's topics to a
:class:`Handoff` as they are fetched, one run per partition (:class:`Fetched`), already in the
form the pipeline reads (`Record`): no Faust message per record. Records of every other topic
(the tables' changelogs during recovery) still take Faust's per-message path.

Faust's offset bookkeeping is kept as is: a run stands for its records in the consumer's set of
unacked messages (what ``Consumer.wait_empty`` waits for before a rebalance or shutdown goes
on) from the moment it is queued, and its records are acked (`BatchConsumer.ack_many`,
``Consumer.ack`` for whole runs) once their batch was processed, so only acked, contiguous
offsets are committed. Faust clears the handoff along with its own agent buffers
(``app.flow_control.clear()``) when partitions are revoked and again when the flow resumes
after the rebalance, which is *after* the seek to the committed offsets: the clear drops the
runs of an earlier consumer generation (fetched again from the committed offsets) but keeps
those fetched since the seek, which nothing would fetch again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any, cast

import aiokafka
import faust
from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify
from mode.utils.queues import FlowControlEvent

from journeylens.processor.pipeline import Record

log = logging.getLogger(__name__)


class Fetched:
    """A run of fetched records of one partition of a handoff topic, in offset order, as the
    pipeline reads them (`Record`). The handoff queues these and the consumer acks them whole.

    It stands for its records in the consumer's set of unacked messages (what
    ``Consumer.wait_empty`` waits on before a rebalance or shutdown goes on), so it has the two
    attributes Faust reads of the members of that set, ``acked`` and ``refcount``. One object
    per slice of a partition's fetched records (`interleave`), not a Faust message per record:
    that message, the round-robin over partitions record by record and the set's add and
    discard were about a third of the worker's CPU per event (``bench worker``: 28.9 → 19.0 µs).
    """

    __slots__ = ("tp", "generation_id", "records", "nbytes", "acked", "refcount", "__weakref__")

    def __init__(self, tp: TP, generation_id: int, records: list[Record], nbytes: int) -> None:
        self.tp = tp
        self.generation_id = generation_id
        self.records = records
        self.nbytes = nbytes
        """The size of the records' values."""
        self.acked = False
        self.refcount = 0

    def __len__(self) -> int:
        return len(self.records)

    def split(self, n: int, nbytes: int) -> Fetched:
        """Take the first ``n`` records (of ``nbytes``) out into a new run."""
        head = Fetched(self.tp, self.generation_id, self.records[:n], nbytes)
        self.records = self.records[n:]
        self.nbytes -= nbytes
        return head

    def __repr__(self) -> str:
        first = self.records[0].offset if self.records else None
        return f"Fetched({self.tp}, {len(self.records)} records from offset {first})"


class Handoff:
    """Fetched runs of records of some topics, waiting for the worker.

    ``put`` waits while ``max_events`` or ``max_bytes`` of message values are queued (the next
    batch, fetched while the worker processes one and stores the one before: three batches in
    memory); ``take`` returns up to ``max_events`` records and ``max_bytes`` (at least one
    record) once that much is queued or ``within_s`` passed since the previous take (so a
    quiet stream still makes at most one batch per ``within_s``). The byte bound keeps a
    worker's memory in check when messages are larger than usual (many errors or resources).
    """

    def __init__(
        self,
        topics: Mapping[str, str] | Iterable[str],
        flow_control: FlowControlEvent,
        unacked: Any,
        *,
        max_events: int,
        within_s: float,
        max_bytes: int | None = None,
        generation: Callable[[], int] | None = None,
    ) -> None:
        self.streams: dict[str, str] = (
            dict(topics) if isinstance(topics, Mapping) else {t: t for t in topics}
        )
        """topic → the stream name its records carry (`Record.stream`)."""
        self.topics = frozenset(self.streams)
        self._generation = generation
        """The consumer's current generation (None: `clear` drops every queued run)."""
        self._flow_control = flow_control
        self._unacked = unacked
        """The consumer's set of unacked messages (``Consumer.unacked``, a WeakSet)."""
        self.max_events = max(1, max_events)
        self.max_bytes = max(1, max_bytes) if max_bytes is not None else None
        self.within_s = within_s
        self._batches: deque[Fetched] = deque()
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

    async def put(self, batch: list[Fetched]) -> None:
        while self._full():
            self._changed.clear()
            await self._changed.wait()
        if not self._flow_control.is_active():
            return  # a rebalance or shutdown started: fetched again from the committed offsets
        for run in batch:
            self._unacked.add(run)
            self._batches.append(run)
            self._queued += len(run.records)
            self._queued_bytes += run.nbytes
        self._changed.set()

    async def take(self) -> list[Fetched]:
        """Runs of up to ``max_events`` records and ``max_bytes`` in all (at least one record),
        in fetch order."""
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
        out: list[Fetched] = []
        room = self.max_events
        budget = self.max_bytes
        taken = taken_bytes = 0
        while self._batches and room:
            head = self._batches[0]
            n = min(len(head.records), room)
            whole = n == len(head.records)
            if budget is not None:
                if whole and head.nbytes <= budget:
                    size = head.nbytes
                else:
                    size, n = _fit(head.records, n, budget, first=not out)
                    if not n:
                        break
                    whole = n == len(head.records)
                budget -= size
            else:
                size = head.nbytes if whole else _size(head.records[:n])
            if whole:
                run = self._batches.popleft()
            else:
                run = head.split(n, size)
                self._unacked.add(run)
            out.append(run)
            taken += n
            taken_bytes += size
            room = self.max_events - taken
        self._queued -= taken
        self._queued_bytes -= taken_bytes
        self._changed.set()
        return out

    def drop(self, runs: Iterable[Fetched]) -> None:
        """Forget runs that will not be processed (not acked: they are read again)."""
        discard = self._unacked.discard
        for run in runs:
            discard(run)

    def drop_all(self) -> None:
        """Forget every queued run (the worker stops: they are read again on restart)."""
        self.drop(self._batches)
        self._batches.clear()
        self._queued = 0
        self._queued_bytes = 0
        self._changed.set()

    def clear(self) -> None:
        """Drop the queued runs fetched before the current consumer generation."""
        current = self._generation() if self._generation is not None else None
        kept: deque[Fetched] = deque()
        for run in self._batches:
            if current is not None and run.generation_id == current:
                kept.append(run)
            else:
                self._unacked.discard(run)
        self._batches = kept
        self._queued = sum(len(run.records) for run in kept)
        self._queued_bytes = sum(run.nbytes for run in kept)
        self._changed.set()


def _size(records: Iterable[Record]) -> int:
    return sum(len(r.value) for r in records)


def _fit(records: list[Record], n: int, budget: int, *, first: bool) -> tuple[int, int]:
    """How many of the first ``n`` records fit in ``budget`` bytes (at least one when
    ``first``: a record larger than the budget still goes, alone), and their size."""
    used = taken = 0
    for record in records[:n]:
        size = len(record.value)
        if used + size > budget and (taken or not first):
            break
        used += size
        taken += 1
    return used, taken


def first_run_end(acked: list[int], index: set[int], committed: int | None) -> int | None:
    """Take the first run of consecutive offsets out of ``acked`` (distinct offsets, sorted here)
    and ``index``; return the offset after it, or None when a gap separates the acked offsets
    from ``committed``. Faust's ``_new_offset`` for a partition without gaps, by bisection."""
    if not acked:
        return None
    acked.sort()
    first = acked[0]
    if committed and first - committed > 1:
        return None
    # acked[i] - first - i never decreases (distinct ints, sorted): bisect for where it leaves 0
    lo, hi = 0, len(acked)
    while lo < hi:
        mid = (lo + hi) // 2
        if acked[mid] - first == mid:
            lo = mid + 1
        else:
            hi = mid
    last = acked[lo - 1]
    del acked[:lo]
    index.difference_update(range(first, last + 1))
    return last + 1


def interleave(runs: list[Fetched], max_events: int) -> list[Fetched]:
    """The partitions' runs of one fetch cut in slices and taken in turn (as Faust's scheduler
    takes their records), so that a batch holds records of every partition fetched: one
    topic's backlog (RUM, say, up to the event that closes every window) must not be worked
    through before the other's (the probe results of those windows, then late)."""
    if len(runs) < 2:
        return runs
    size = max(1, max_events // (2 * len(runs)))
    if all(len(run.records) <= size for run in runs):
        return runs
    out: list[Fetched] = []
    begin = 0
    while True:
        taken = False
        for run in runs:
            part = run.records[begin : begin + size]
            if part:
                taken = True
                nbytes = sum(map(len, map(_VALUE, part)))
                out.append(Fetched(run.tp, run.generation_id, part, nbytes))
        if not taken:
            return out
        begin += size


_VALUE = attrgetter("value")


class HandoffStreams(dict[str, str]):
    """Topic → stream name of a worker's handoff topics, set as its aiokafka consumer's value
    deserializer: it marks that consumer's fetched records of those topics to be made pipeline
    `Record`s by `HandoffRecords`. It never deserializes anything (the values stay bytes)."""


class HandoffRecords(aiokafka_fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's iterator over the records of one fetched partition, which yields a pipeline
    `Record` for each record of a handoff topic fetched by a worker's consumer (one marked by
    `HandoffStreams`), instead of a ``ConsumerRecord`` the fetch loop then copied into a
    `Record`: this iteration takes about 0.7 of the time it took (2.6 → 1.9 µs a record,
    ``tests/bench/bench_fetch_records.py``). Any other record, or any consumer not so marked,
    gets aiokafka's own ``ConsumerRecord``.

    Installed as ``aiokafka.consumer.fetcher.PartitionRecords`` (the name aiokafka's fetcher
    builds them by) once a worker's consumer is created, not on import: a process without a
    worker (the bench's plain consumer, say) keeps aiokafka's class. Position bookkeeping, CRC
    checks and transaction markers stay aiokafka's (``_unpack_records``); only the record
    object differs.
    """

    def __init__(
        self,
        tp: Any,
        records: Any,
        aborted_transactions: Any,
        fetch_offset: int,
        key_deserializer: Any,
        value_deserializer: Any,
        check_crcs: bool,
        isolation_level: Any,
    ) -> None:
        streams = value_deserializer if isinstance(value_deserializer, HandoffStreams) else None
        super().__init__(
            tp,
            records,
            aborted_transactions,
            fetch_offset,
            key_deserializer,
            None if streams is not None else value_deserializer,
            check_crcs,
            isolation_level,
        )
        self.stream = streams.get(tp.topic) if streams is not None else None
        """The stream name its records carry, or None: aiokafka's ``ConsumerRecord``s."""

    def _consumer_record(self, tp: Any, record: Any) -> Any:
        stream = self.stream
        if stream is None:
            return super()._consumer_record(tp, record)
        return Record(stream, tp.partition, record.offset, record.value or b"", record.key)


FETCH_MAX_WAIT_MS = 100
"""How long the broker may hold a fetch of partitions that have no new records (Faust sets
1,500 ms). aiokafka keeps one fetch in flight per broker and leaves out of it the partitions
whose fetched records were not taken yet: while the handoff is full, the partitions with a
backlog are in that state, so the next fetch asks only for the caught-up (or empty) ones and the
broker holds it this long, and the partitions with a backlog wait behind it. With 1,500 ms a
worker stood idle about a second every other batch (``bench worker``: 35k → 47–63k events/s).
An idle worker sends a fetch this often per broker, a small request."""


class _HandoffConsumerThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, whose worker consumer marks the handoff's topics and
    waits less for empty partitions (`FETCH_MAX_WAIT_MS`)."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by the fetcher it creates on start, like the value deserializer below
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        streams = cast(BatchApp, self.app).handoff_streams()
        if streams:
            aiokafka_fetcher.PartitionRecords = HandoffRecords
            # read by the fetcher it creates on start (aiokafka.consumer.consumer, start())
            consumer._value_deserializer = HandoffStreams(streams)
        return consumer


class BatchApp(faust.App):
    """A Faust app whose consumer hands fetched batches of some topics to a :class:`Handoff`."""

    _batch_spec: tuple[dict[str, str], int, float, int | None] | None = None
    _handoff: Handoff | None = None

    def deliver_in_batches(
        self,
        topics: Mapping[str, str],
        max_events: int,
        within_s: float,
        max_bytes: int | None = None,
    ) -> None:
        """Route these topics (topic → the stream name its records carry) through
        :meth:`handoff` (call before the worker starts)."""
        self._batch_spec = (dict(topics), max_events, within_s, max_bytes)

    def handoff_streams(self) -> dict[str, str]:
        """Topic → stream name of the topics delivered in batches (empty when none are)."""
        return dict(self._batch_spec[0]) if self._batch_spec is not None else {}

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

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _HandoffConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def ack_many(self, runs: Iterable[Fetched]) -> int:
        """`Consumer.ack` of every record of these runs, under one lock and with one wake-up.

        Unlike ``Consumer.ack``, every run given is done with (no longer unacked), also one
        whose offsets were acked or committed already: a record fetched twice (once before the
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
            for run in runs:
                discard(cast(Any, run))
                if run.acked:
                    continue
                run.acked = True
                tp = run.tp
                if not acks_enabled_for(tp.topic):
                    continue
                committed = committed_offsets[tp]
                index = acked_index[tp]
                append = acked_offsets[tp].append
                for record in run.records:
                    offset = record.offset
                    if (committed is None or offset >= committed) and offset not in index:
                        index.add(offset)
                        append(offset)
                        acked += 1
            self._n_acked += acked
            notify(self._waiting_for_ack)
        return acked

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's ``Consumer._new_offset`` (the offset to commit: past the first run of
        consecutive acked offsets), without a Python step per offset when the partition has no
        gaps: a worker acks 40,000 offsets a batch, and Faust's loop over them was a tenth of
        its event loop's time."""
        if self._gap[tp]:
            return super()._new_offset(tp)
        return first_run_end(self._acked[tp], self._acked_index[tp], self._committed_offset[tp])

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
        streams = handoff.streams
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
                fetched: list[Fetched] = []
                now = time.monotonic()
                others: dict[TP, Any] = {}
                for tp in records:
                    monitor.track_tp_end_offset(tp, self.highwater(tp))
                for tp, tp_records in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        break
                    if not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    if tp.topic not in batch_topics:
                        others[tp] = tp_records
                        continue
                    # a partition's records in order, not record by record in Faust's
                    # round-robin over topics and partitions (interleaved below, by slices)
                    stream, partition = streams[tp.topic], tp.partition
                    gaps = acks_enabled_for(tp.topic)
                    r_offset = read_offset[tp]
                    run: list[Record] = []
                    nbytes = 0
                    for record in tp_records:
                        offset = record.offset
                        if r_offset is not None and offset < r_offset:
                            continue  # read already (Faust logs it as DROPPED MESSAGE)
                        if r_offset and offset - r_offset > 1 and gaps:
                            await self._add_gap(tp, r_offset + 1, offset)
                        # a ConsumerRecord only if aiokafka built its own records (its
                        # PartitionRecords renamed, say): slower, still correct
                        if type(record) is not Record:
                            record = Record(
                                stream, partition, offset, record.value or b"", record.key
                            )
                        nbytes += len(record.value)
                        run.append(record)
                        r_offset = offset
                    read_offset[tp] = r_offset
                    if run:
                        fetched.append(Fetched(tp, generation_id, run, nbytes))
                        monitor.stream_inbound_time[tp] = now
                batch = interleave(fetched, handoff.max_events)
                for tp, record in self.scheduler.iterate(others) if others else ():
                    # other topics (the tables' changelogs): Faust's per-message path
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        break
                    offset = record.offset
                    r_offset = read_offset[tp]
                    if r_offset is not None and offset < r_offset:
                        continue
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    message = to_message(tp, record)
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    read_offset[tp] = offset
                if batch and self.flow_active:
                    await self.wait_first(handoff.put(batch), self.suspend_flow.wait())
                del batch
                # No commit here every ``broker_commit_every`` acks, as Faust's loop does: a
                # commit first flushes the producer (a batch's aggregates and changelog being
                # sent), and fetching stopped for as long, up to a second a batch. Faust's
                # commit task still commits every ``broker_commit_interval``.
                self._n_acked = 0
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
