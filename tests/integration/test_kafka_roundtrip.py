"""10,000 keyed messages through a real 4-partition topic and a consumer group.

Checks what the processor relies on: nothing lost, nothing duplicated, a key always lands on one
partition, and order is kept within a partition (and so within a key).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tests.fixtures.kafka import create_topics

from journeylens.settings import KafkaSettings

pytestmark = pytest.mark.kafka

MESSAGES = 10_000
KEYS = 97
PARTITIONS = 4


async def _create_topic(kafka: KafkaSettings) -> str:
    name = f"{kafka.topic_prefix}roundtrip-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka, [name], PARTITIONS)
    return name


async def _produce(kafka: KafkaSettings, topic: str) -> dict[bytes, int]:
    """Send MESSAGES values ``key:seq`` over KEYS keys; return key -> partition."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        futures = []
        for i in range(MESSAGES):
            key = f"journey-{i % KEYS}".encode()
            value = f"{key.decode()}:{i // KEYS}".encode()
            futures.append(await producer.send(topic, value, key=key))
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    partition_of: dict[bytes, int] = {}
    for i, record in enumerate(metadata):
        key = f"journey-{i % KEYS}".encode()
        assert partition_of.setdefault(key, record.partition) == record.partition
    return partition_of


async def _consume(
    kafka: KafkaSettings, topic: str, group: str
) -> list[tuple[int, int, bytes, bytes]]:
    """Read everything as one group member; commit; return (partition, offset, key, value)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[tuple[int, int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(120):
            while len(seen) < MESSAGES:
                batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
                for tp, records in batches.items():
                    seen.extend((tp.partition, r.offset, r.key, r.value) for r in records)
        await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
        extra = await consumer.getmany(timeout_ms=500)
        seen.extend(
            (tp.partition, r.offset, r.key, r.value) for tp, rs in extra.items() for r in rs
        )
        await consumer.commit()
    finally:
        await consumer.stop()
    return seen


async def _committed_total(kafka: KafkaSettings, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=group)
    await consumer.start()
    try:
        offsets = [await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)]
    finally:
        await consumer.stop()
    return sum(offset or 0 for offset in offsets)


async def test_keyed_messages_roundtrip_without_loss_duplicates_or_reordering(
    kafka_settings: KafkaSettings,
) -> None:
    topic = await _create_topic(kafka_settings)
    partition_of = await _produce(kafka_settings, topic)
    group = f"{kafka_settings.topic_prefix}roundtrip-group"
    seen = await _consume(kafka_settings, topic, group)

    values = [value for _, _, _, value in seen]
    assert len(values) == MESSAGES, "lost or duplicated messages"
    assert len(set(values)) == MESSAGES, "duplicated messages"
    assert len({partition for partition, *_ in seen}) == PARTITIONS, "keys not spread"

    last_offset: dict[int, int] = defaultdict(lambda: -1)
    last_seq: dict[bytes, int] = defaultdict(lambda: -1)
    for partition, offset, key, value in seen:
        assert partition == partition_of[key], "a key moved partition"
        assert offset > last_offset[partition], "partition order broken"
        seq = int(value.rsplit(b":", 1)[1])
        assert seq == last_seq[key] + 1, f"key {key!r} out of order or gapped"
        last_offset[partition], last_seq[key] = offset, seq

    assert await _committed_total(kafka_settings, topic, group) == MESSAGES
