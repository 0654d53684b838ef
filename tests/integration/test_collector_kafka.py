"""The collector against a real broker that goes away and comes back.

A dedicated `KafkaBroker` (own data dir and ports) is stopped while beacons keep arriving:
the collector must answer 503 with Retry-After while it is down (never 2xx-and-drop), and
every beacon that got a 2xx must be on the topic once the broker is back.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.unit.collector.support import SITE_KEY, beacon, demo_catalog, read_topic

from journeylens.collector.app import create_app
from journeylens.collector.sink import KafkaSink
from journeylens.settings import CollectorSettings, KafkaSettings, StackSettings, Topic
from journeylens.stack.kafka import KafkaBroker
from journeylens.stack.process import free_port
from journeylens.stack.topics import ensure_topics, load_topic_specs

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _progress(line: str) -> None:
    sys.stderr.write(f"[own broker] {line}\n")


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    stack = StackSettings(
        data_dir=tmp_path_factory.mktemp("collector-kafka"),
        cache_dir=REPO / ".cache",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    broker = KafkaBroker(stack)
    broker.start(_progress)
    try:
        yield broker
    finally:
        broker.stop(timeout_s=30.0, progress=_progress)


async def test_503_while_kafka_is_down_and_no_acknowledged_beacon_is_lost(
    own_broker: KafkaBroker,
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=own_broker.bootstrap_servers,
        topic_prefix=f"outage-{uuid.uuid4().hex[:6]}.",
        client_id="collector-outage-test",
    )
    await ensure_topics(kafka, load_topic_specs(REPO / "schemas" / "topics"), _progress)
    settings = CollectorSettings(
        buffer_max_events=200, retry_after_s=2, rate_limit_per_s=1e6, rate_limit_burst=1_000_000
    )
    sink = KafkaSink(kafka, settings, ack_timeout_s=2.0)
    await sink.start()
    app = create_app(settings, demo_catalog(), sink)
    sid = f"s-outage-{uuid.uuid4().hex[:8]}"
    outcomes: dict[str, int] = {}
    phase = {"name": "up"}
    codes_by_phase: dict[str, list[int]] = {"up": [], "down": [], "back": []}
    stop = asyncio.Event()

    async def sender(client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        while not stop.is_set():
            pid = f"p-{worker}-{n}"
            body = beacon("/cart", sid=sid)
            body["pid"] = pid
            n += 1
            try:
                response = await client.post(
                    f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(body)
                )
            except httpx.HTTPError:
                continue
            outcomes[pid] = response.status_code
            codes_by_phase[phase["name"]].append(response.status_code)
            if response.status_code == 503:
                assert response.headers["retry-after"] == "2"
                assert response.headers["content-type"] == "application/problem+json"
            await asyncio.sleep(0.02)

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://c", timeout=30
        ) as client:
            tasks = [asyncio.create_task(sender(client, w)) for w in range(4)]
            await asyncio.sleep(2.0)
            phase["name"] = "down"
            await asyncio.to_thread(own_broker.stop, 30.0, _progress)
            await asyncio.sleep(8.0)
            assert not await sink.ready()
            await asyncio.to_thread(own_broker.start, _progress)
            phase["name"] = "back"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                recent = codes_by_phase["back"][-20:]
                if len(recent) == 20 and all(code == 202 for code in recent):
                    break
                await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        await sink.stop()

    assert set(codes_by_phase["up"]) == {202}, codes_by_phase["up"]
    assert 503 in codes_by_phase["down"], codes_by_phase["down"]
    assert set(outcomes.values()) <= {202, 503}
    assert codes_by_phase["back"][-20:] == [202] * 20
    acknowledged = {pid for pid, code in outcomes.items() if code == 202}
    records = await read_topic(
        kafka,
        kafka.physical(Topic.RUM_BEACONS),
        lambda v: v.get("session_id") == sid,
        expected=len(acknowledged),
        timeout_s=60,
        settle_s=2.0,
    )
    landed = {r.value["page_id"] for r in records}
    assert acknowledged - landed == set(), f"{len(acknowledged - landed)} acknowledged lost"
    assert all(r.key == b"checkout" for r in records)
