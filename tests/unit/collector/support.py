"""Shared pieces of the collector tests: sample bodies, a fake sink, a Kafka reader."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from journeylens.collector.sink import SinkUnavailable
from journeylens.contracts.catalog import Catalog, load_catalog
from journeylens.contracts.journeylens_deadletter_v1 import DeadLetter
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.settings import KafkaSettings
from journeylens.stack.topics import admin_client_options

REPO = Path(__file__).resolve().parents[3]
SITE_KEY = "pk_demo_shop_0001"
ORIGIN = "http://127.0.0.1:8600"
CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def demo_catalog() -> Catalog:
    return load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml")


def beacon(
    path: str = "/cart",
    items: Sequence[dict[str, Any]] | None = None,
    sid: str | None = None,
) -> dict[str, Any]:
    """A JourneyLens beacon batch as the agent sends it."""
    return {
        "v": 1,
        "sid": sid or f"s-{uuid.uuid4().hex[:12]}",
        "pid": f"p-{uuid.uuid4().hex[:12]}",
        "url": f"http://127.0.0.1:8600{path}?q=1&token=secret#top",
        "ts": time.time() * 1000,
        "conn": {"type": "4g", "rtt": 50, "downlink": 10},
        "items": list(
            items
            if items is not None
            else [
                {
                    "type": "page_view",
                    "vitals": {"lcp": 1800, "cls": 0.02, "fcp": 900, "ttfb": 120},
                    "nav": {"dns": 3, "connect": 5, "duration": 1500},
                    "res": [{"host": "127.0.0.1:8602", "n": 4, "dur": 80, "max": 30}],
                }
            ]
        ),
    }


def web_vitals_body(page: str = "http://127.0.0.1:8600/checkout") -> bytes:
    metric_id = f"v5-{int(time.time() * 1000)}-{uuid.uuid4().int % 10**13}"
    return orjson.dumps(
        [
            {
                "name": "LCP",
                "value": 2100.5,
                "rating": "good",
                "delta": 2100.5,
                "id": metric_id,
                "navigationType": "navigate",
                "page": page,
            },
        ]
    )


def boomerang_query(page: str = "http://127.0.0.1:8600/cart") -> str:
    now = int(time.time() * 1000)
    from urllib.parse import urlencode

    return urlencode(
        {
            "k": SITE_KEY,
            "u": page,
            "pid": uuid.uuid4().hex[:8],
            "n": "1",
            "rt.si": f"si-{uuid.uuid4().hex[:8]}",
            "rt.tstart": str(now - 1500),
            "rt.end": str(now),
            "t_done": "1500",
            "t_resp": "120",
            "t_page": "1380",
            "nt_nav_st": str(now - 1500),
            "pt.fcp": "800",
            "pt.lcp": "1400",
            "c.cls": "0.01",
        }
    )


def otlp_logs_body() -> bytes:
    now_ns = str(time.time_ns())
    return orjson.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "shop-web"}}
                        ]
                    },
                    "scopeLogs": [
                        {
                            "logRecords": [
                                {
                                    "timeUnixNano": now_ns,
                                    "eventName": "browser.web_vital",
                                    "attributes": [
                                        {
                                            "key": "browser.web_vital.name",
                                            "value": {"stringValue": "INP"},
                                        },
                                        {
                                            "key": "browser.web_vital.value",
                                            "value": {"doubleValue": 180},
                                        },
                                        {
                                            "key": "browser.web_vital.delta",
                                            "value": {"doubleValue": 180},
                                        },
                                        {
                                            "key": "browser.web_vital.id",
                                            "value": {"stringValue": f"v5-{uuid.uuid4().hex}"},
                                        },
                                        {
                                            "key": "browser.web_vital.rating",
                                            "value": {"stringValue": "good"},
                                        },
                                        {
                                            "key": "url.full",
                                            "value": {
                                                "stringValue": "http://127.0.0.1:8600/checkout"
                                            },
                                        },
                                    ],
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )


def nel_reports_body() -> bytes:
    return orjson.dumps(
        [
            {
                "age": 1000,
                "type": "network-error",
                "url": "http://127.0.0.1:8601/v1/charges",
                "user_agent": CHROME_UA,
                "body": {
                    "phase": "connection",
                    "type": "tcp.timed_out",
                    "status_code": 0,
                    "elapsed_time": 30000,
                    "server_ip": "",
                    "protocol": "http/1.1",
                    "method": "POST",
                    "sampling_fraction": 1.0,
                },
            }
        ]
    )


@dataclass
class FakeSink:
    """An in-memory sink for the pure-HTTP guard tests (no Kafka semantics to check there)."""

    events: list[RumEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    started: bool = False
    fail: SinkUnavailable | None = None

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def ready(self) -> bool:
        return self.started

    async def publish(self, events: Sequence[RumEvent], dead: Sequence[DeadLetter]) -> None:
        if self.fail is not None:
            raise self.fail
        self.events.extend(events)
        self.dead.extend(dead)


@dataclass
class Record:
    key: bytes | None
    value: dict[str, Any]
    partition: int


async def read_topic(
    kafka: KafkaSettings,
    topic: str,
    wanted: Callable[[dict[str, Any]], bool],
    expected: int,
    timeout_s: float = 30.0,
    settle_s: float = 0.0,
) -> list[Record]:
    """Records of ``topic`` (from the beginning) for which ``wanted`` holds.

    Returns once ``expected`` were found (then reads ``settle_s`` longer to catch extras) or
    after ``timeout_s``.
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        **admin_client_options(kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Record] = []
    try:
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if settle_until is None and len(found) >= expected:
                settle_until = time.monotonic() + settle_s
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batches = await consumer.getmany(timeout_ms=300)
            for messages in batches.values():
                for message in messages:
                    value = orjson.loads(message.value)
                    if wanted(value):
                        found.append(Record(message.key, value, message.partition))
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return found
