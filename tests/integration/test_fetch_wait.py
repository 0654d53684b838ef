"""A partition with a backlog is not held up behind a fetch of partitions that have nothing new.

aiokafka keeps one fetch in flight per broker and leaves out of it the partitions whose fetched
records were not taken yet. While the worker's handoff is full, that is every partition with a
backlog, so the next fetch asks only for the empty or caught-up ones, and the broker holds it
up to the consumer's ``fetch_max_wait_ms``; the backlog waits behind it. The worker's consumer
waits `FETCH_MAX_WAIT_MS` (Faust's 1,500 ms kept a worker idle about a second every other
batch). Both values are measured here against the real broker, in the same run."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from tests.fixtures.kafka import create_topics

from journeylens.processor.delivery import FETCH_MAX_WAIT_MS
from journeylens.settings import KafkaSettings
from journeylens.stack.topics import admin_client_options

pytestmark = pytest.mark.kafka

FAUST_FETCH_MAX_WAIT_MS = 1_500
"""What Faust's worker consumer is created with."""
ROUNDS = 3
HELD_S = 0.4
"""How long each round leaves the fetched records untaken (a full handoff)."""
MESSAGES = 1_000


async def _topic_with_one_backlog(settings: KafkaSettings) -> str:
    """Partition 0 holds ``MESSAGES`` records of 1 kB; partition 1 is empty."""
    topic = f"{settings.topic_prefix}fetch-wait-{uuid.uuid4().hex[:6]}"
    await create_topics(settings, [topic], partitions=2)
    producer = AIOKafkaProducer(**admin_client_options(settings), linger_ms=5)
    await producer.start()
    try:
        for i in range(MESSAGES):
            await producer.send(topic, b"%06d" % i + b"x" * 1_000, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    return topic


async def _waits_for_the_backlog(
    settings: KafkaSettings, topic: str, fetch_max_wait_ms: int
) -> tuple[list[float], list[int]]:
    """Each round: leave the fetched records untaken for a while, take them, then time how
    long the backlogged partition's next records take. Returns those waits and every offset
    taken."""
    backlog = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        **admin_client_options(settings),
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=64 * 1024,  # a few fetches a round, not the whole backlog
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.assign([backlog, TopicPartition(topic, 1)])
    await consumer.start()
    waits: list[float] = []
    offsets: list[int] = []
    try:
        first = await consumer.getmany(timeout_ms=10_000)
        offsets += [r.offset for r in first.get(backlog, [])]
        for _ in range(ROUNDS):
            await asyncio.sleep(HELD_S)
            held = await consumer.getmany(timeout_ms=0)
            assert held.get(backlog), "the backlog's next records were fetched meanwhile"
            offsets += [r.offset for r in held[backlog]]
            started = time.monotonic()
            after = await consumer.getmany(timeout_ms=10_000)
            waits.append(time.monotonic() - started)
            assert set(after) == {backlog}
            offsets += [r.offset for r in after[backlog]]
    finally:
        await consumer.stop()
    return waits, offsets


async def test_the_worker_fetch_wait_keeps_a_backlog_from_waiting_behind_empty_partitions(
    kafka_settings: KafkaSettings,
) -> None:
    topic = await _topic_with_one_backlog(kafka_settings)
    faust_waits, faust_offsets = await _waits_for_the_backlog(
        kafka_settings, topic, FAUST_FETCH_MAX_WAIT_MS
    )
    worker_waits, worker_offsets = await _waits_for_the_backlog(
        kafka_settings, topic, FETCH_MAX_WAIT_MS
    )
    # nothing skipped or taken twice, either way
    for offsets in (faust_offsets, worker_offsets):
        assert offsets == list(range(len(offsets)))
    # Faust's wait: the backlog sat behind the held fetch of the empty partition
    assert statistics.median(faust_waits) > (FAUST_FETCH_MAX_WAIT_MS / 1000 - HELD_S) / 2
    assert statistics.median(worker_waits) < statistics.median(faust_waits) / 4, (
        worker_waits,
        faust_waits,
    )
