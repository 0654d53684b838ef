"""The experience agent: batches of both input topics → pipeline → sinks. Thin by design.

Batches come from the consumer's :class:`~journeylens.processor.delivery.Handoff` (whole
fetched batches, not Faust's per-message agent delivery); each message is acked only once its
batch was stored in ClickHouse, published and changelogged, so Faust commits only offsets whose
effects are durable.

Batches are processed one at a time, in order, and their side effects happen in that order too,
but the side effects of batch N (ClickHouse inserts, topics, changelog; mostly waiting on the
servers) overlap the processing of batch N+1. Batch N+1 starts from the in-memory journey
states batch N left (encoded for the changelog when N was processed, so the blob is a snapshot).
A batch still being processed or stored when the consumer generation changes (a rebalance) is
dropped unacked and the in-memory states are forgotten: its records are read again from the
committed offsets, on the states the table holds (restored from the changelog).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx

from journeylens.processor.app import WorkerApp
from journeylens.processor.delivery import BatchConsumer, Fetched, Handoff
from journeylens.processor.outputs import (
    ClickHouseOutputs,
    post_webhooks,
    produce_batched,
    publish,
)
from journeylens.processor.pipeline import BatchOutput, ExperiencePipeline, JourneyState, Record

log = logging.getLogger(__name__)


@dataclass
class _Processed:
    """A processed batch waiting for its side effects."""

    out: BatchOutput
    blobs: dict[str, bytes]
    """journey → its new state, encoded (the changelog value)."""
    runs: list[Fetched]
    """The records it holds, as fetched (acked once its side effects are done)."""
    generation: int


class ExperienceAgent:
    def __init__(
        self,
        worker: WorkerApp,
        pipeline: ExperiencePipeline,
        clickhouse: ClickHouseOutputs,
        *,
        batch_max: int,
        batch_within_s: float,
        batch_max_bytes: int | None = None,
        webhook_urls: Sequence[str] = (),
    ) -> None:
        self.worker = worker
        self.pipeline = pipeline
        self.clickhouse = clickhouse
        self.batch_max = batch_max
        self.batch_within_s = batch_within_s
        self.batch_max_bytes = batch_max_bytes
        self.webhook_urls = list(webhook_urls)
        self.processed = 0
        self._lock = asyncio.Lock()
        """Held while a batch (or the idle close) is processed: one at a time, in order."""
        self._emitting: asyncio.Future[None] | None = None
        """The side effects of the last processed batch (awaited before the next ones start)."""
        self._http: httpx.AsyncClient | None = None
        self._states = _StateCache()

    def register(self) -> None:
        app = self.worker.app
        app.topics.add(self.worker.source)  # subscribed (and acked) like an agent's topic
        app.deliver_in_batches(
            self.worker.topic_streams, self.batch_max, self.batch_within_s, self.batch_max_bytes
        )
        app.task(self.consume)
        app.timer(interval=5.0)(self.close_idle_windows)

    async def consume(self) -> None:
        """Process the handed-off batches until the app stops; an error crashes the app, whose
        restart reads the unacked records again from the committed offsets."""
        app = self.worker.app
        handoff = app.handoff()
        assert handoff is not None
        try:
            while not app.should_stop:
                runs = await handoff.take()
                if runs:
                    await self._consume(handoff, runs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the experience agent failed: %r", exc)
            await app.crash(exc)
        finally:
            handoff.drop_all()  # not processed: Faust's shutdown must not wait for them

    async def _consume(self, handoff: Handoff, runs: list[Fetched]) -> None:
        app = self.worker.app
        if not app.flow_control.is_active():
            handoff.drop(runs)  # a rebalance started: read again once it is done
            return
        generation = app.consumer_generation_id
        stale = [run for run in runs if run.generation_id != generation]
        if stale:
            handoff.drop(stale)
            runs = [run for run in runs if run.generation_id == generation]
        records = [record for run in runs for record in run.records]
        async with self._lock:
            try:
                out, blobs = await self._process(records)
                await self._emitted()
            except asyncio.CancelledError:
                self._drop(handoff, runs)  # stopping: read again on restart
                raise
            if app.consumer_generation_id != generation:
                self._drop(handoff, runs)
                return
            self._states.processed(out, blobs)
            batch = _Processed(out, blobs, runs, generation)
            self._emitting = asyncio.ensure_future(self._finish(handoff, batch))

    async def _process(self, records: list[Record]) -> tuple[BatchOutput, dict[str, bytes]]:
        states = _TableStates(self.pipeline, self.worker.table.data, self._states)
        try:
            return await asyncio.to_thread(_process_and_encode, self.pipeline, records, states)
        except BaseException:
            self._states.clear()  # states it changed are in the cache: decode them again
            raise

    async def _emitted(self) -> None:
        """Wait for the side effects of the last batch (raises what they raised)."""
        emitting, self._emitting = self._emitting, None
        if emitting is not None:
            await emitting

    def _drop(self, handoff: Handoff, runs: list[Fetched]) -> None:
        """A rebalance happened since the batch was taken: its records are read again from
        the committed offsets, and the states it changed in memory are forgotten."""
        handoff.drop(runs)
        self._states.clear()

    async def _finish(self, handoff: Handoff, batch: _Processed) -> None:
        app = self.worker.app
        if app.consumer_generation_id != batch.generation:
            self._drop(handoff, batch.runs)
            return
        try:
            await self._emit(batch.out, batch.blobs)
        except asyncio.CancelledError:
            self._drop(handoff, batch.runs)  # stopping: read again on restart
            raise
        except Exception as exc:
            log.exception("storing a batch failed: %r", exc)
            await app.crash(exc)
            raise
        consumer = cast(BatchConsumer, app.consumer)
        consumer.ack_many(batch.runs)
        self.processed += sum(len(run.records) for run in batch.runs)

    async def _emit(self, out: BatchOutput, blobs: Mapping[str, bytes]) -> None:
        """Side effects in the order that keeps replays exact: storage, topics, then state."""
        await asyncio.to_thread(self.clickhouse.write_raw, out)
        await asyncio.to_thread(self.clickhouse.write_results, out)
        await publish(out, self._send_many)
        if out.alerts and self.webhook_urls:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0)
            await post_webhooks(self._http, self.webhook_urls, out.alerts)
        table = self.worker.table
        for journey, (partition, _) in out.states.items():
            blob = blobs[journey]
            key = journey.encode()
            table.data[key] = blob
            table.send_changelog(partition, key, blob)
            self._states.written(key, blob)

    async def _send_many(self, name: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        topic = self.worker.outputs[name].get_topic_name()
        producer = cast(Any, self.worker.app.producer)._ensure_producer()  # aiokafka's
        await produce_batched(producer, topic, messages)

    async def close_idle_windows(self) -> None:
        """Close windows of journeys without traffic, once their idle timeout has passed."""
        assignment = self.worker.app.consumer.assignment()
        owned = {tp.partition for tp in assignment}
        async with self._lock:
            # Like a batch, the states are read and closed while the last batch's side effects
            # may still be going (its blobs are snapshots); only this close's own side effects
            # wait for them, and only when it closed something. Waiting first held the next
            # batch up for a whole ClickHouse insert every 5 s (~0.8 s in ``bench worker``).
            generation = self.worker.app.consumer_generation_id
            table_data = self.worker.table.data
            lookup = _TableStates(self.pipeline, table_data, self._states, remember=True)
            states: dict[str, tuple[int, JourneyState]] = {}
            for key in list(table_data.keys()):
                journey = key.decode()
                state = lookup[journey]
                if state.partition in owned and state.closer is not None and state.closer.open:
                    states[journey] = (state.partition, state)
            if not states:
                return
            out = await asyncio.to_thread(self.pipeline.close_idle, states)
            if not out.states:
                return
            blobs = await asyncio.to_thread(_encode_states, out.states)
            await self._emitted()
            if self.worker.app.consumer_generation_id != generation:
                self._states.clear()  # states changed in memory only: decode them again
                return
            self._states.processed(out, blobs)
            if out.aggregates:
                log.info("closed %d idle window rows", len(out.aggregates))
            await self._emit(out, blobs)


def _process_and_encode(
    pipeline: ExperiencePipeline, records: list[Record], states: _TableStates
) -> tuple[BatchOutput, dict[str, bytes]]:
    # The decoded messages are many short-lived containers without cycles (freed by their
    # reference counts): collecting while they are alive costs ~10 % of a batch for nothing.
    gc.disable()
    try:
        out = pipeline.process(records, states)
        return out, _encode_states(out.states)
    finally:
        gc.enable()


def _encode_states(states: Mapping[str, tuple[int, JourneyState]]) -> dict[str, bytes]:
    return {journey: state.encode() for journey, (_, state) in states.items()}


class _StateCache:
    """Decoded journey states, so a batch does not decode its journeys' blobs again.

    An entry is ``key → (blob, state)``: ``state`` is the newest in-memory state and ``blob``
    its encoding, which is in the table or about to be (``unwritten`` holds the blobs of a
    processed batch until its side effects wrote them to the table).
    """

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[bytes, JourneyState]] = {}
        self.unwritten: dict[bytes, bytes] = {}

    def processed(self, out: BatchOutput, blobs: Mapping[str, bytes]) -> None:
        for journey, (_, state) in out.states.items():
            key = journey.encode()
            blob = blobs[journey]
            self.unwritten[key] = blob
            self.entries[key] = (blob, state)

    def written(self, key: bytes, blob: bytes) -> None:
        """``blob`` is in the table now (set there before this is called)."""
        if self.unwritten.get(key) is blob:
            del self.unwritten[key]

    def clear(self) -> None:
        self.entries.clear()
        self.unwritten.clear()


class _TableStates(Mapping[str, JourneyState]):
    """The journey states of one batch, read from the table on first use.

    A cached state is used while it is still what the table holds: the very blob it was
    encoded to is in the table, or is about to be written there by the side effects of the
    previous batch (a restore or another writer puts a new blob there, which forces a decode).
    With ``remember``, a state decoded from the table is cached with its blob (only for
    callers that register every state they change, before anything else can use the cache).
    """

    def __init__(
        self,
        pipeline: ExperiencePipeline,
        table: Any,
        cache: _StateCache,
        *,
        remember: bool = False,
    ) -> None:
        self._pipeline = pipeline
        self._table = table
        self._cache = cache
        self._remember = remember
        self._loaded: dict[str, JourneyState] = {}

    def __getitem__(self, journey: str) -> JourneyState:
        state = self._loaded.get(journey)
        if state is None:
            key = journey.encode()
            cached = self._cache.entries.get(key)
            # unwritten first: the previous batch's side effects set the table, then unwritten
            if cached is not None and self._cache.unwritten.get(key) is cached[0]:
                state = cached[1]
            else:
                blob = self._table.get(key)
                if cached is not None and blob is not None and cached[0] is blob:
                    state = cached[1]
                else:
                    state = self._pipeline.decode_state(blob)
                    if self._remember and blob is not None:
                        self._cache.entries[key] = (blob, state)
            self._loaded[journey] = state
        return state

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded)

    def __len__(self) -> int:
        return len(self._loaded)
