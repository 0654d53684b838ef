"""Where a batch's results go: ClickHouse tables, output topics, Alertmanager webhooks."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from clickhouse_connect.driver.client import Client

from journeylens.domain.alertmanager import alertmanager_payload
from journeylens.processor.pipeline import BatchOutput, Record
from journeylens.storage.sink import TableWriter

log = logging.getLogger(__name__)

RUM_LANDING = "rum_events_landing"
"""Null table + materialized view into rum_events (migration 0006): parsed once, server side."""

Send = Callable[[str, bytes, bytes], Awaitable[None]]
"""(logical output name, key, value) → produced to Kafka."""


class ClickHouseOutputs:
    """One writer per table; every write of a batch happens before its offsets are committed."""

    def __init__(self, client: Client) -> None:
        # RUM messages go in unchanged; the view of migration 0006 flattens them into rum_events.
        self.rum = TableWriter(client, RUM_LANDING)
        self.synthetic = TableWriter(client, "synthetic_results")
        self.aggregates = TableWriter(client, "journey_aggregates")
        self.anomalies = TableWriter(client, "anomalies")
        self.alerts = TableWriter(client, "alerts")

    def write_raw(self, out: BatchOutput) -> None:
        if out.rum_messages:
            self.rum.write_messages(out.rum_messages)
        if out.synthetic_results:
            flat = self.synthetic.flattener
            self.synthetic.write(
                r for res in out.synthetic_results for r in flat.synthetic_rows(res)
            )

    def write_results(self, out: BatchOutput) -> None:
        if out.aggregates:
            self.aggregates.write(self.aggregates.flattener.flatten(a) for a in out.aggregates)
        if out.anomalies:
            self.anomalies.write(self.anomalies.flattener.flatten(a) for a in out.anomalies)
        if out.alerts:
            self.alerts.write(self.alerts.flattener.alert_row(a) for a in out.alerts)


async def publish(out: BatchOutput, send: Send) -> None:
    for aggregate in out.aggregates:
        await send("aggregates", aggregate["journey"].encode(), orjson.dumps(aggregate))
    for anomaly in out.anomalies:
        await send("anomalies", anomaly["journey"].encode(), orjson.dumps(anomaly))
    for alert in out.alerts:
        await send("alerts", alert["subject"].encode(), orjson.dumps(alert))
    for record, reason in out.dead_letters:
        await send("deadletter", b"worker", dead_letter(record, reason))


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
