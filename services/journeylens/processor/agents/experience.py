"""The experience agent: batches of both input topics → pipeline → sinks. Thin by design.

Batches come from the consumer's :class:`~journeylens.processor.delivery.Handoff` (whole
fetched batches, not Faust's per-message agent delivery); each message is acked only once its
batch was stored in ClickHouse, published and changelogged, so Faust commits only offsets whose
effects are durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
from faust.types import Message

from journeylens.processor.app import WorkerApp
from journeylens.processor.delivery import Handoff
from journeylens.processor.outputs import ClickHouseOutputs, post_webhooks, publish
from journeylens.processor.pipeline import BatchOutput, ExperiencePipeline, JourneyState, Record

log = logging.getLogger(__name__)


class ExperienceAgent:
    def __init__(
        self,
        worker: WorkerApp,
        pipeline: ExperiencePipeline,
        clickhouse: ClickHouseOutputs,
        *,
        batch_max: int,
        batch_within_s: float,
        webhook_urls: Sequence[str] = (),
    ) -> None:
        self.worker = worker
        self.pipeline = pipeline
        self.clickhouse = clickhouse
        self.batch_max = batch_max
        self.batch_within_s = batch_within_s
        self.webhook_urls = list(webhook_urls)
        self.processed = 0
        self._lock = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None
        self._decoded: dict[bytes, tuple[bytes, JourneyState]] = {}
        """key → (the table's blob, that blob decoded): saves decoding it every batch."""

    def register(self) -> None:
        app = self.worker.app
        app.topics.add(self.worker.source)  # subscribed (and acked) like an agent's topic
        app.deliver_in_batches(self.worker.topic_streams, self.batch_max, self.batch_within_s)
        app.task(self.consume)
        app.timer(interval=5.0)(self.close_idle_windows)

    async def consume(self) -> None:
        """Process the handed-off batches until the app stops; an error crashes the app, whose
        restart reads the unacked records again from the committed offsets."""
        app = self.worker.app
        try:
            handoff = app.handoff()
            assert handoff is not None
            while not app.should_stop:
                messages = await handoff.take()
                if messages:
                    await self._consume(handoff, messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the experience agent failed: %r", exc)
            await app.crash(exc)

    async def _consume(self, handoff: Handoff, messages: list[Message]) -> None:
        app = self.worker.app
        if not app.flow_control.is_active():
            handoff.drop(messages)  # a rebalance started: read again once it is done
            return
        generation = app.consumer_generation_id
        stale = [m for m in messages if m.generation_id != generation]
        if stale:
            handoff.drop(stale)
            messages = [m for m in messages if m.generation_id == generation]
        names = self.worker.topic_streams
        records = [Record(names[m.topic], m.partition, m.offset, m.value or b"") for m in messages]
        async with self._lock:
            await self._process(records)
        ack = app.consumer.ack
        for message in messages:
            ack(message)
        self.processed += len(records)

    async def _process(self, records: list[Record]) -> None:
        states = _TableStates(self.pipeline, self.worker.table.data, self._decoded)
        try:
            out = await asyncio.to_thread(self.pipeline.process, records, states)
            await self._emit(out)
        finally:
            states.release()

    async def _emit(self, out: BatchOutput) -> None:
        """Side effects in the order that keeps replays exact: storage, topics, then state."""
        await asyncio.to_thread(self.clickhouse.write_raw, out)
        await asyncio.to_thread(self.clickhouse.write_results, out)
        await publish(out, self._send)
        if out.alerts and self.webhook_urls:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0)
            await post_webhooks(self._http, self.webhook_urls, out.alerts)
        table = self.worker.table
        blobs = await asyncio.to_thread(_encode_states, out.states)
        for journey, (partition, state) in out.states.items():
            blob = blobs[journey]
            key = journey.encode()
            table.data[key] = blob
            table.send_changelog(partition, key, blob)
            self._decoded[key] = (blob, state)

    async def _send(self, name: str, key: bytes, value: bytes) -> None:
        await self.worker.outputs[name].send(key=key, value=value)

    async def close_idle_windows(self) -> None:
        """Close windows of journeys without traffic, once their idle timeout has passed."""
        assignment = self.worker.app.consumer.assignment()
        owned = {tp.partition for tp in assignment}
        async with self._lock:
            table_data = self.worker.table.data
            states: dict[str, tuple[int, JourneyState]] = {}
            for key, blob in list(table_data.items()):
                state = self.pipeline.decode_state(blob)
                if state.partition in owned and state.closer is not None and state.closer.open:
                    states[key.decode()] = (state.partition, state)
            if not states:
                return
            out = await asyncio.to_thread(self.pipeline.close_idle, states)
            if out.aggregates:
                log.info("closed %d idle window rows", len(out.aggregates))
            await self._emit(out)


def _encode_states(states: Mapping[str, tuple[int, JourneyState]]) -> dict[str, bytes]:
    return {journey: state.encode() for journey, (_, state) in states.items()}


class _TableStates(Mapping[str, JourneyState]):
    """The journey states of one batch, read from the table on first use.

    A state decoded earlier is reused while the table still holds the very blob it came from
    (a restore or another writer puts a new blob there, which forces a decode). Reused states
    are taken out of the cache while the batch runs, since the pipeline changes them in place:
    only `_emit` puts them back, with their new blob, once the batch was stored; a batch that
    fails leaves them out, so the next one decodes the table's (unchanged) blob again.
    """

    def __init__(
        self,
        pipeline: ExperiencePipeline,
        table: Any,
        decoded: dict[bytes, tuple[bytes, JourneyState]],
    ) -> None:
        self._pipeline = pipeline
        self._table = table
        self._decoded = decoded
        self._loaded: dict[str, JourneyState] = {}

    def __getitem__(self, journey: str) -> JourneyState:
        state = self._loaded.get(journey)
        if state is None:
            key = journey.encode()
            blob = self._table.get(key)
            cached = self._decoded.pop(key, None)
            if cached is not None and blob is not None and cached[0] is blob:
                state = cached[1]
            else:
                state = self._pipeline.decode_state(blob)
            self._loaded[journey] = state
        return state

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded)

    def __len__(self) -> int:
        return len(self._loaded)

    def release(self) -> None:
        self._loaded.clear()
