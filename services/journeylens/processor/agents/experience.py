"""The experience agent: batches of both input topics → pipeline → sinks. Thin by design."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from journeylens.processor.app import WorkerApp
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

    def register(self) -> None:
        app = self.worker.app
        app.agent(self.worker.source, name="experience")(self.consume)
        app.timer(interval=5.0)(self.close_idle_windows)

    async def consume(self, stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(self.batch_max, within=self.batch_within_s):
            records = [
                Record(
                    self.worker.topic_streams[e.message.topic],
                    e.message.partition,
                    e.message.offset,
                    e.message.value,
                )
                for e in events
            ]
            async with self._lock:
                await self._process(records)
            self.processed += len(records)
            yield None

    async def _process(self, records: list[Record]) -> None:
        table_data = self.worker.table.data
        journeys = {self._journey_hint(r) for r in records}
        states: dict[str, JourneyState] = {}
        for journey in journeys:
            if journey:
                states[journey] = self.pipeline.decode_state(table_data.get(journey.encode()))
        out = await asyncio.to_thread(self.pipeline.process, records, states)
        await self._emit(out)

    @staticmethod
    def _journey_hint(record: Record) -> str | None:
        # The key is not kept on Record; the pipeline reads the journey from the message. Here
        # we only need the set of journeys to preload: decode cheaply from the value.
        marker = b'"journey":"'
        start = record.value.find(marker)
        if start < 0:
            return None
        start += len(marker)
        end = record.value.find(b'"', start)
        return record.value[start:end].decode("utf-8", "replace") if end > start else None

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
        for journey, (partition, state) in out.states.items():
            blob = state.encode()
            key = journey.encode()
            table.data[key] = blob
            table.send_changelog(partition, key, blob)

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
