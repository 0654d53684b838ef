"""Probe results on the real Kafka broker: keyed by journey, valid against the contract."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from tests.fixtures.kafka import free_ports

from journeylens.contracts.synthetic_results_v1 import RunStatus, SyntheticResult
from journeylens.demo_shop.server import running_in_thread
from journeylens.demo_shop.settings import DemoShopSettings, Service
from journeylens.settings import KafkaSettings, Topic
from journeylens.stack.topics import admin_client_options
from journeylens.synthetic.plan import load_plans
from journeylens.synthetic.publisher import KafkaResultPublisher
from journeylens.synthetic.runner import JourneyRunner
from journeylens.synthetic.scheduler import ProbeScheduler

CATALOG = Path(__file__).resolve().parents[2] / "infra" / "catalog" / "demo-shop.yaml"
REPO = CATALOG.parents[2]

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShopSettings]:
    shop_port, payment_port, cdn_port, sso_port = free_ports(4)
    settings = DemoShopSettings(
        shop_port=shop_port, payment_port=payment_port, cdn_port=cdn_port, sso_port=sso_port
    )
    with running_in_thread(settings):
        yield settings


async def test_results_arrive_keyed_by_journey(
    shop: DemoShopSettings, kafka_settings: KafkaSettings, kafka_topics: dict[Topic, str]
) -> None:
    overrides = {
        "shop": shop.url(Service.SHOP),
        "sso": shop.url(Service.SSO),
        "pay": shop.url(Service.PAYMENT),
        "cdn": shop.url(Service.CDN),
    }
    plans = [p for p in load_plans(CATALOG, overrides).plans if not p.uses_browser]
    topic = kafka_topics[Topic.SYNTHETIC_RESULTS]
    async with KafkaResultPublisher(kafka_settings) as publisher:
        assert publisher.topic == topic
        scheduler = ProbeScheduler(plans, JourneyRunner(location="kafka-test"), publisher)
        sent = await scheduler.run_once()
    assert sent and all(r.status is RunStatus.PASSED for r in sent)

    consumer = AIOKafkaConsumer(
        topic,
        **admin_client_options(kafka_settings),
        group_id=f"{kafka_settings.topic_prefix}probe-test",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: dict[str, SyntheticResult] = {}
    partitions: dict[str, set[int]] = {}
    try:
        async with asyncio.timeout(60):
            while len(received) < len(sent):
                batch = await consumer.getmany(timeout_ms=1000)
                for messages in batch.values():
                    for message in messages:
                        assert message.key is not None and message.value is not None
                        result = SyntheticResult.model_validate(json.loads(message.value))
                        assert message.key == result.journey.encode("utf-8")
                        received[result.run_id] = result
                        partitions.setdefault(result.journey, set()).add(message.partition)
    finally:
        await consumer.stop()
    assert {r.run_id for r in sent} == set(received)
    assert all(len(p) == 1 for p in partitions.values())
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(
        (REPO / "schemas" / "jsonschema" / "synthetic.results.v1.schema.json").read_text()
    )
    for result in received.values():
        jsonschema.validate(result.model_dump(mode="json"), schema)
