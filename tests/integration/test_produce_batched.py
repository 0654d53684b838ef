"""The worker's outputs go to Kafka in whole record batches, placed as ``send`` places them."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from tests.fixtures.kafka import create_topics

from journeylens.processor.outputs import produce_batched
from journeylens.settings import KafkaSettings
from journeylens.stack.topics import admin_client_options

pytestmark = pytest.mark.kafka


async def _read(settings: KafkaSettings, topic: str) -> list[tuple[int, bytes, bytes]]:
    """Every message on ``topic`` (partition, key, value), read up to its end offsets."""
    consumer = AIOKafkaConsumer(
        topic,
        **admin_client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[int, bytes, bytes]] = []
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        async with asyncio.timeout(30):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend((r.partition, r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return got


async def _new_topics(settings: KafkaSettings, *names: str) -> list[str]:
    """Fresh topics of 4 partitions (the output topics' count), named for this test."""
    topics = [f"{settings.topic_prefix}{name}-{uuid.uuid4().hex[:6]}" for name in names]
    await create_topics(settings, topics, partitions=4)
    return topics


async def test_every_message_lands_once_on_its_send_partition_in_order(
    kafka_settings: KafkaSettings,
) -> None:
    # 3,000 messages of 12 journeys, ~1 kB each: several record batches per partition
    messages = [
        (f"journey-{i % 12}".encode(), f'{{"n":{i},"pad":"{"x" * 1000}"}}'.encode())
        for i in range(3000)
    ]
    batched, sent_one_by_one = await _new_topics(kafka_settings, "batched", "one-by-one")
    producer = AIOKafkaProducer(**admin_client_options(kafka_settings), max_batch_size=64 * 1024)
    await producer.start()
    try:
        await produce_batched(producer, batched, messages)
        for key, value in messages[:24]:  # where send puts each journey
            await producer.send_and_wait(sent_one_by_one, value, key=key)
    finally:
        await producer.stop()

    got = await _read(kafka_settings, batched)
    assert sorted(v for _, _, v in got) == sorted(v for _, v in messages)  # none lost, none twice
    by_partition: dict[int, list[bytes]] = defaultdict(list)
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for partition, key, value in got:
        by_partition[partition].append(value)
        partitions_of[key].add(partition)
    for partition, values in by_partition.items():  # in the given order within a partition
        assert values == [v for k, v in messages if partitions_of[k] == {partition}]
    reference = await _read(kafka_settings, sent_one_by_one)
    assert {key: {p} for p, key, _ in reference} == dict(partitions_of)
    assert len(by_partition) > 1  # the 12 keys spread over the topic's partitions


async def test_nothing_to_send_sends_nothing(kafka_settings: KafkaSettings) -> None:
    [topic] = await _new_topics(kafka_settings, "empty")
    producer = AIOKafkaProducer(**admin_client_options(kafka_settings))
    await producer.start()
    try:
        await produce_batched(producer, topic, [])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**admin_client_options(kafka_settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(4)]
        assert set((await consumer.end_offsets(partitions)).values()) == {0}
    finally:
        await consumer.stop()
