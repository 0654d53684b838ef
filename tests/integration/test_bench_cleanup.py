"""A benchmark run on the configured (long-lived) broker takes its topics away with it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.fixtures.kafka import create_topics, topic_names

from journeylens.settings import KafkaSettings
from journeylens.stack.throwaway import bench_kafka
from journeylens.stack.topics import (
    delete_topics_with_prefix,
    ensure_topics,
    load_topic_specs,
)

pytestmark = pytest.mark.kafka


def _named(names: set[str], prefix: str) -> set[str]:
    return {name for name in names if name.startswith(prefix)}


def _when(settings: KafkaSettings, done: Callable[[set[str]], bool]) -> set[str]:
    """The broker's topics once ``done`` holds of them (its metadata follows a creation or a
    deletion shortly after it answered), or after 10 s."""
    for _ in range(50):
        names = asyncio.run(topic_names(settings))
        if done(names):
            break
        time.sleep(0.2)
    return names


def test_a_bench_on_the_configured_broker_deletes_its_topics_and_only_those(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    said: list[str] = []
    other = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"cleanup-{uuid.uuid4().hex[:6]}."
    )
    kept = f"{other.topic_prefix}kept"  # another run's topic
    asyncio.run(create_topics(other, [kept], partitions=1))
    with bench_kafka(tmp_path, said.append) as kafka:
        assert kafka.bootstrap_servers == kafka_bootstrap  # the configured broker, not a new one
        prefix = kafka.topic_prefix
        asyncio.run(ensure_topics(kafka, load_topic_specs()))
        asyncio.run(create_topics(kafka, [f"{prefix}worker-journey-state-changelog"], partitions=1))
        created = _when(kafka, lambda names: len(_named(names, prefix)) == 7)
        assert len(_named(created, prefix)) == len(load_topic_specs()) + 1

    left = _when(other, lambda names: not _named(names, prefix))
    assert not _named(left, prefix)
    assert kept in left
    asyncio.run(delete_topics_with_prefix(other, other.topic_prefix))
    assert said[-1] == f"deleted the run's 7 topics ({prefix}*)"


def test_deleting_by_prefix_needs_a_prefix(kafka_settings: KafkaSettings) -> None:
    with pytest.raises(ValueError, match="a prefix is needed"):
        asyncio.run(delete_topics_with_prefix(kafka_settings, ""))
