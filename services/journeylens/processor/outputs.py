"""Where a batch's results go: ClickHouse tables, output topics, Alertmanager webhooks."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from journeylens.domain.alertmanager import alertmanager_payload
from journeylens.processor.pipeline import BatchOutput, Record
from journeylens.storage.sink import InsertRejected, TableWriter

_rumnative: ModuleType | None
try:
    from journeylens.storage import _rumnative
except ImportError:  # not compiled here: every message goes through the JSONEachRow reader
    _rumnative = None

log = logging.getLogger(__name__)

RUM_INPUT = "rum_events_input"
"""Null table whose columns are the message's fields + view into rum_events (migration 0007):
the messages go in as Native blocks of its columns (`_rumnative`), or unchanged (JSONEachRow)
for the server's format reader to parse."""
NATIVE_SLICE = 10_000
"""Messages per Native block (encoded without the GIL, a slice at a time, as the insert streams
them: one slice's block in memory, not a batch's)."""
RUM_LANDING = "rum_events_landing"
"""One-String-column Null table + view into rum_events (migration 0006), parsed by JSONExtract:
the lenient path, for a batch the typed table rejects (a field of the wrong type)."""
RUM_INSERT_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 1,
    "input_format_json_defaults_for_missing_elements_in_named_tuple": 1,
    "input_format_json_ignore_unknown_keys_in_named_tuple": 1,
    # rum_events is a ReplacingMergeTree read with FINAL (a replay replaces its earlier copy):
    # collapsing the duplicates of one insert block as well cost a third of the server's CPU
    # per event, and only a block holding one event twice would have any
    "optimize_on_insert": 0,
    # one server thread parses a batch (and runs its views): 10-20 % less server CPU per event
    # than splitting it across threads (measured 240k bench events, 40k a batch, alternating:
    # 12.3 -> 9.5, 14.2 -> 12.0, 15.3 -> 11.6 us/event), and no slower on 2 cores; a server
    # with more cores than inserting workers spends them on the other workers' batches
    "input_format_parallel_parsing": 0,
    "max_threads": 1,
    # the float a Native block carries is the correctly rounded one (strtod's); the reader's
    # default algorithm can be one unit off in the last place, and one message must give one row
    "precise_float_parsing": 1,
}

SendMany = Callable[[str, Sequence[tuple[bytes, bytes]]], Awaitable[None]]
"""(logical output name, [(key, value), …]) → on Kafka (delivered) when it returns."""


class ClickHouseOutputs:
    """One writer per table; every write of a batch happens before its offsets are committed."""

    def __init__(self, client: Client) -> None:
        # RUM messages go in unchanged; the views of migrations 0007 (typed) and 0006 (lenient)
        # flatten them into rum_events.
        self.rum = TableWriter(client, RUM_INPUT)
        self.rum_lenient = TableWriter(client, RUM_LANDING)
        self.native = _rumnative
        """The Native encoder (None: the JSONEachRow reader reads every message)."""
        self.synthetic = TableWriter(client, "synthetic_results")
        self.aggregates = TableWriter(client, "journey_aggregates")
        self.anomalies = TableWriter(client, "anomalies")
        self.alerts = TableWriter(client, "alerts")

    def write_raw(self, out: BatchOutput) -> None:
        if out.rum_messages:
            self.write_rum(out.rum_messages)
        if out.synthetic_results:
            flat = self.synthetic.flattener
            self.synthetic.write(
                r for res in out.synthetic_results for r in flat.synthetic_rows(res)
            )

    def write_rum(self, messages: Sequence[bytes]) -> None:
        """Store RUM messages as rum_events rows: as Native blocks of the typed input table, and
        the messages the encoder leaves out through its JSONEachRow reader (see `write_typed`).

        The server stores a Native block for about 60 % of its CPU per event (bench messages,
        8 batches of 40,000 and the merges after them: 9.3 → 5.6 µs); the encoder costs ~1.5 µs
        a message, without the GIL. When the server refuses the blocks (a table changed under a
        running worker, say), the whole batch goes through the reader instead.

        The blocks are encoded while the insert streams them (`_NativeSlices`): one block of
        ~4.7 MB in memory at a time instead of a batch's (~38 MB for 80,000 bench messages),
        and the next slice is encoded while the server reads the last."""
        if self.native and messages:
            slices = _NativeSlices(self.native, messages)
            try:
                self.rum.write_stream(
                    slices, lambda: slices.rows, "Native", RUM_INSERT_SETTINGS, retry_rejected=False
                )
            except InsertRejected as exc:
                log.warning(
                    "ClickHouse refused %d RUM messages as Native blocks (%s); storing this "
                    "batch through the JSONEachRow reader instead",
                    len(messages),
                    exc,
                )
                slices.left_out = list(messages)
            messages = slices.left_out
            if not messages:
                return
        self.write_typed(messages)

    def write_typed(self, messages: Sequence[bytes]) -> None:
        """Store RUM messages through the typed input table's JSONEachRow reader, or leniently
        when that is refused."""
        try:
            self.rum.write_messages(
                messages, "JSONEachRow", RUM_INSERT_SETTINGS, retry_rejected=False
            )
        except InsertRejected as exc:
            log.warning(
                "ClickHouse could not read %d RUM messages as typed rows (%s); storing this "
                "batch through %s instead (same rows; a mistyped field takes its default)",
                len(messages),
                exc,
                RUM_LANDING,
            )
            self.rum_lenient.write_messages(
                messages, settings={"optimize_on_insert": RUM_INSERT_SETTINGS["optimize_on_insert"]}
            )

    def write_results(self, out: BatchOutput) -> None:
        if out.aggregates:
            self.aggregates.write(self.aggregates.flattener.flatten(a) for a in out.aggregates)
        if out.anomalies:
            self.anomalies.write(self.anomalies.flattener.flatten(a) for a in out.anomalies)
        if out.alerts:
            self.alerts.write(self.alerts.flattener.alert_row(a) for a in out.alerts)


async def publish(out: BatchOutput, send_many: SendMany) -> None:
    """A batch's aggregates, anomalies, alerts and dead letters, each output in one call."""
    outputs = (
        ("aggregates", [(a["journey"].encode(), orjson.dumps(a)) for a in out.aggregates]),
        ("anomalies", [(a["journey"].encode(), orjson.dumps(a)) for a in out.anomalies]),
        ("alerts", [(a["subject"].encode(), orjson.dumps(a)) for a in out.alerts]),
        ("deadletter", [(b"worker", dead_letter(r, reason)) for r, reason in out.dead_letters]),
    )
    for name, messages in outputs:
        if messages:
            await send_many(name, messages)


async def produce_batched(
    producer: AIOKafkaProducer, topic: str, messages: Sequence[tuple[bytes, bytes]]
) -> None:
    """Produce (key, value) messages to ``topic`` as whole record batches, one per partition
    (more when one fills up), each message on the partition ``producer.send`` would choose and
    in the given order within it; return once the broker acknowledged them all.

    A window's ~1,000 aggregates went through Faust's ``Topic.send`` one by one (a channel,
    callbacks and aiokafka's accumulator per message): ~20 µs each on the event loop, which
    also fetches. Raises what a delivery raised (the batch is then not acknowledged).

    A key's partition is computed once per call (aiokafka's murmur2 is pure Python, ~µs a
    key): a call's messages share few keys (journeys)."""
    await producer.partitions_for(topic)  # waits for the topic's metadata
    open_batches: dict[int, Any] = {}
    partition_of: dict[bytes, int] = {}
    sent: list[asyncio.Future[Any]] = []
    for key, value in messages:
        partition = partition_of.get(key)
        if partition is None:
            partition = partition_of[key] = producer._partition(topic, None, None, None, key, value)
        batch = open_batches.get(partition)
        if batch is None:
            batch = open_batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it
            sent.append(await producer.send_batch(batch, topic, partition=partition))
            batch = open_batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(
                    f"a message of {len(value)} bytes does not fit a record batch of {topic}"
                )
    for partition, batch in open_batches.items():
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*sent)


def dead_letter(record: Record, reason: str) -> bytes:
    return orjson.dumps(
        {
            "source": f"worker:{record.stream}",
            "reason": f"partition {record.partition} offset {record.offset}: {reason}",
            "received_at": datetime.now(UTC).isoformat(),
            "raw_base64": base64.b64encode(record.value).decode(),
            "content_type": "application/json",
            "schema_version": 1,
        }
    )


async def post_webhooks(
    client: httpx.AsyncClient, urls: Sequence[str], alerts: Sequence[dict[str, Any]]
) -> None:
    """POST each alert in the Prometheus Alertmanager webhook format; failures are logged."""
    for alert in alerts:
        payload = alertmanager_payload(alert)
        results = await asyncio.gather(
            *(client.post(url, json=payload) for url in urls), return_exceptions=True
        )
        for url, result in zip(urls, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("webhook %s failed: %s", url, result)
            elif result.status_code >= 300:
                log.warning("webhook %s answered %s", url, result.status_code)


class _NativeSlices:
    """The Native blocks of a batch's messages, encoded a `NATIVE_SLICE` at a time as they are
    sent. Each call is a fresh pass (an insert retried after a lost connection encodes again);
    ``rows`` and ``left_out`` describe the last pass: the rows its blocks hold and the messages
    the encoder left out, in order."""

    def __init__(self, native: ModuleType, messages: Sequence[bytes]) -> None:
        self.native = native
        self.messages = messages
        self.rows = 0
        self.left_out: list[bytes] = []

    def __call__(self) -> Generator[bytes, None, None]:
        self.rows = 0
        self.left_out = []
        messages = self.messages
        for begin in range(0, len(messages), NATIVE_SLICE):
            part = messages[begin : begin + NATIVE_SLICE]
            block, refused = self.native.encode(part)
            self.rows += len(part) - len(refused)
            self.left_out += [part[i] for i in refused]
            if block:
                yield block
