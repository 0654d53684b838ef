"""The worker through real Kafka and ClickHouse: exact aggregates, and exact after a kill -9."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from journeylens.settings import KafkaSettings, Topic
from journeylens.stack.topics import ensure_topics, load_topic_specs
from journeylens.storage.client import ClickHouseTarget, client_for

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
CATALOG = Path(__file__).resolve().parents[2] / "infra" / "catalog" / "demo-shop.yaml"
MINUTES = 4
VIEWS_PER_MINUTE = 150


def _events() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    view = json.loads((EXAMPLES / "rum.beacons/v1/checkout_page_view.json").read_text())
    run = json.loads((EXAMPLES / "synthetic.results/v1/checkout_payment_failed.json").read_text())
    rum, synthetic = [], []
    for minute in range(MINUTES):
        for i in range(VIEWS_PER_MINUTE):
            event = copy.deepcopy(view)
            event.update(
                event_id=f"w-{minute}-{i}",
                session_id=f"s-{minute}-{i % 50}",
                timestamp=f"2026-11-25T10:0{minute}:{i % 60:02d}.000Z",
                sample_rate=1.0,
            )
            event["vitals"]["lcp_ms"] = 1000.0 + 10 * i
            rum.append(event)
        result = copy.deepcopy(run)
        result.update(run_id=f"r-{minute}", started_at=f"2026-11-25T10:0{minute}:05.000Z")
        synthetic.append(result)
    closing = copy.deepcopy(view)  # moves the watermark past every window above
    closing.update(event_id="w-closing", timestamp="2026-11-25T10:20:00.000Z", sample_rate=1.0)
    rum.append(closing)
    return rum, synthetic


@pytest.fixture(scope="module")
def worker_kafka(kafka_bootstrap: str) -> KafkaSettings:
    """Topics of this module alone: other tests' beacons must not reach these workers."""
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"worker-{uuid.uuid4().hex[:8]}."
    )
    asyncio.run(ensure_topics(settings, load_topic_specs()))
    return settings


@pytest.fixture(scope="module")
def produced(worker_kafka: KafkaSettings) -> int:
    rum, synthetic = _events()

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=worker_kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for event in rum:
                topic = worker_kafka.physical(Topic.RUM_BEACONS)
                await producer.send(topic, orjson.dumps(event), key=b"checkout")
            for result in synthetic:
                topic = worker_kafka.physical(Topic.SYNTHETIC_RESULTS)
                await producer.send(topic, orjson.dumps(result), key=b"checkout")
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
    return len(rum)


def _start_worker(
    kafka: KafkaSettings, target: ClickHouseTarget, app_id: str, batch: int
) -> subprocess.Popen[bytes]:
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"{app_id}.log"
    env = {
        **os.environ,
        "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOURNEYLENS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "JOURNEYLENS_CLICKHOUSE_DSN": target.dsn(),
        "JOURNEYLENS_WORKER_APP_ID": app_id,
        "JOURNEYLENS_CATALOG_PATH": str(CATALOG),
        "JOURNEYLENS_WORKER_BATCH_MAX_EVENTS": str(batch),
        "JOURNEYLENS_WORKER_SINK_FLUSH_S": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "journeylens.cli.main", "worker", "--loglevel", "info"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=log.parent,  # the worker's data directory (<app id>-data) goes there
    )


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


def _aggregates(target: ClickHouseTarget) -> list[tuple[Any, ...]]:
    client = client_for(target)
    try:
        return client.query(
            "SELECT aggregate_id, rum_page_views, rum_sessions, rum_lcp_ms_p75, synthetic_runs, "
            "synthetic_failures, funnel_sessions_entered, status, scope "
            "FROM journey_aggregates FINAL ORDER BY aggregate_id"
        ).result_rows
    finally:
        client.close()


def _count(target: ClickHouseTarget, sql: str) -> int:
    client = client_for(target)
    try:
        return int(client.query(sql).result_rows[0][0])
    finally:
        client.close()


def _all_windows_done(target: ClickHouseTarget) -> bool:
    sql = (
        "SELECT count() FROM journey_aggregates FINAL WHERE step = '_journey' "
        "AND segment_dimension = 'all'"
    )
    return _count(target, sql) >= MINUTES


@pytest.fixture(scope="module")
def uninterrupted(
    produced: int,
    worker_kafka: KafkaSettings,
    clickhouse_database_factory: Callable[[str], ClickHouseTarget],
) -> Iterator[ClickHouseTarget]:
    target = clickhouse_database_factory("worker_a")
    worker = _start_worker(worker_kafka, target, f"jl-a-{uuid.uuid4().hex[:6]}", 20_000)
    try:
        _wait(lambda: _all_windows_done(target), 120, "the worker to close every window")
        raw = "SELECT count() FROM rum_events FINAL"
        _wait(lambda: _count(target, raw) == produced, 60, "every raw event")
    finally:
        _stop(worker)
    yield target


def _published_aggregates(kafka: KafkaSettings) -> list[dict[str, Any]]:
    """Every message on the aggregates topic, read up to its end offsets."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            kafka.physical(Topic.AGGREGATES),
            bootstrap_servers=kafka.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while not consumer.assignment():
                await asyncio.sleep(0.1)
            ends = await consumer.end_offsets(list(consumer.assignment()))
            out: list[dict[str, Any]] = []
            async with asyncio.timeout(30):
                while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        out.extend(orjson.loads(r.value) for r in records)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_known_input_gives_exact_aggregates(uninterrupted: ClickHouseTarget, produced: int) -> None:
    rows = {row[0]: row for row in _aggregates(uninterrupted)}
    for minute in range(MINUTES):
        key = f"checkout|_journey|2026-11-25T10:0{minute}:00Z|all|all"
        _, views, sessions, lcp_p75, runs, failures, entered, status, scope = rows[key]
        assert views == VIEWS_PER_MINUTE
        assert sessions == 50
        exact = sorted(1000.0 + 10 * i for i in range(VIEWS_PER_MINUTE))[int(0.75 * 149)]
        assert abs(lcp_p75 - exact) <= 0.02 * exact  # within the sketch's stated 1 % (+ rank)
        assert (runs, failures) == (1, 1)
        assert entered == 50
        assert status == "failing"
        assert scope == "confirmed"
    assert _count(uninterrupted, "SELECT count() FROM rum_events FINAL") == produced
    assert (
        _count(uninterrupted, "SELECT count() FROM synthetic_results FINAL WHERE step = '_journey'")
        == MINUTES
    )


def test_aggregates_are_published_once_each_as_stored(
    uninterrupted: ClickHouseTarget, worker_kafka: KafkaSettings
) -> None:
    """The uninterrupted worker put every aggregate row on Kafka once (none lost, none twice),
    keyed by journey, the same window as in ClickHouse."""
    published = _published_aggregates(worker_kafka)
    stored = {row[0]: row for row in _aggregates(uninterrupted)}
    ids = [a["aggregate_id"] for a in published]
    assert len(ids) == len(set(ids)) == len(stored) > MINUTES
    assert set(ids) == set(stored)
    for aggregate in published:
        _, views, sessions, _, runs, failures, _, status, scope = stored[aggregate["aggregate_id"]]
        assert aggregate["rum"]["page_views"] == views
        assert aggregate["rum"]["sessions"] == sessions
        assert (aggregate["synthetic"]["runs"], aggregate["synthetic"]["failures"]) == (
            runs,
            failures,
        )
        assert (aggregate["status"], aggregate["scope"]) == (status, scope)


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    uninterrupted: ClickHouseTarget,
    produced: int,
    worker_kafka: KafkaSettings,
    clickhouse_database_factory: Callable[[str], ClickHouseTarget],
) -> None:
    target = clickhouse_database_factory("worker_b")
    app_id = f"jl-b-{uuid.uuid4().hex[:6]}"
    worker = _start_worker(worker_kafka, target, app_id, 40)
    try:
        raw = "SELECT count() FROM rum_events"
        _wait(lambda: _count(target, raw) >= 120, 120, "the worker to be mid-stream")
    finally:
        _stop(worker, signal.SIGKILL)
    assert _count(target, "SELECT count() FROM rum_events FINAL") < produced
    worker = _start_worker(worker_kafka, target, app_id, 40)
    try:
        _wait(lambda: _all_windows_done(target), 180, "the restarted worker to finish")
        _wait(
            lambda: _count(target, "SELECT count() FROM rum_events FINAL") == produced,
            60,
            "every raw event after the restart",
        )
    finally:
        _stop(worker)
    assert _aggregates(target) == _aggregates(uninterrupted)
