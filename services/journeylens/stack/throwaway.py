"""Throw-away real components for benchmarks: a Kafka broker and a ClickHouse server on free
loopback ports in a scratch directory, stopped when the block ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from journeylens.settings import KafkaSettings, StackSettings
from journeylens.stack.clickhouse_server import ClickHouseServer
from journeylens.stack.kafka import KafkaBroker, broker_is_ready
from journeylens.stack.process import Progress, free_port, no_progress
from journeylens.stack.topics import delete_topics_with_prefix


@contextmanager
def throwaway_clickhouse(
    work: Path, progress: Progress = no_progress
) -> Iterator[ClickHouseServer]:
    stack = StackSettings(
        data_dir=work / "clickhouse-stack",
        clickhouse_http_port=free_port(),
        clickhouse_tcp_port=free_port(),
    )
    server = ClickHouseServer(stack)
    server.start(progress)
    try:
        yield server
    finally:
        server.stop(timeout_s=20.0, progress=progress)


@contextmanager
def throwaway_kafka(work: Path, progress: Progress = no_progress) -> Iterator[KafkaBroker]:
    stack = StackSettings(
        data_dir=work / "kafka-stack",
        cache_dir=StackSettings().cache_dir.resolve(),  # the shared jar cache
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
    )
    broker = KafkaBroker(stack)
    broker.start(progress)
    try:
        yield broker
    finally:
        broker.stop(timeout_s=30.0, progress=progress)


@contextmanager
def bench_kafka(work: Path, progress: Progress = no_progress) -> Iterator[KafkaSettings]:
    """The configured Kafka when it answers, else a throw-away broker; a fresh topic prefix.

    On the configured broker, the topics named with that prefix (the run's own: name any
    other topic a run creates with it too) are deleted when the block ends: a worker bench
    writes about a gigabyte of them a run, kept for the broker's retention otherwise."""
    configured = KafkaSettings()
    host, _, port = configured.bootstrap_servers.split(",")[0].rpartition(":")
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    if port.isdigit() and broker_is_ready(host or "127.0.0.1", int(port)):
        settings = configured.model_copy(update={"topic_prefix": prefix})
        try:
            yield settings
        finally:
            try:
                deleted = asyncio.run(delete_topics_with_prefix(settings, prefix))
                progress(f"deleted the run's {len(deleted)} topics ({prefix}*)")
            except Exception as exc:  # noqa: BLE001 - a failed clean-up must not hide the result
                progress(f"could not delete the run's topics ({prefix}*): {exc}; delete them")
        return
    with throwaway_kafka(work, progress) as broker:
        yield KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=prefix)
