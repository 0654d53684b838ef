"""Fault drills on the worker: ClickHouse away for 60 s, and two workers where one dies.

Each drill has topics and a database of its own, feeds a known input and checks the exact
numbers that come out: nothing lost, nothing counted twice.
"""

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from journeylens.settings import KafkaSettings, StackSettings, Topic
from journeylens.stack.clickhouse_server import ClickHouseServer
from journeylens.stack.process import free_port
from journeylens.stack.topics import ensure_topics, load_topic_specs
from journeylens.storage.client import make_client, parse_dsn
from journeylens.storage.migrations import apply_migrations

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
CATALOG = Path(__file__).resolve().parents[2] / "infra" / "catalog" / "demo-shop.yaml"
JOURNEYS = ("checkout", "login", "search", "products-api")
STEPS = {
    "checkout": "cart",
    "login": "login-page",
    "search": "product",
    "products-api": "list-products",
}
PATHS = {
    "checkout": "/cart",
    "login": "/login",
    "search": "/product/p-1",
    "products-api": "/api/products",
}
MINUTES = 3
VIEWS = 80  # per journey and minute


def _input() -> list[tuple[str, dict[str, Any]]]:
    view = json.loads((EXAMPLES / "rum.beacons/v1/checkout_page_view.json").read_text())
    out = []
    for minute in range(MINUTES):
        for journey in JOURNEYS:
            for i in range(VIEWS):
                event = copy.deepcopy(view)
                event.update(
                    event_id=f"{journey}-{minute}-{i}",
                    journey=journey,
                    step=STEPS[journey],
                    path=PATHS[journey],
                    session_id=f"{journey}-{minute}-{i % 20}",
                    timestamp=f"2026-11-25T10:0{minute}:{i % 60:02d}.000Z",
                    sample_rate=1.0,
                )
                out.append((journey, event))
    for journey in JOURNEYS:  # moves each journey's watermark past every window
        closing = copy.deepcopy(view)
        closing.update(
            event_id=f"{journey}-closing", journey=journey, step=STEPS[journey],
            path=PATHS[journey], timestamp="2026-11-25T10:20:00.000Z", sample_rate=1.0,
        )  # fmt: skip
        out.append((journey, closing))
    return out


def _produce(kafka: KafkaSettings, items: list[tuple[str, dict[str, Any]]]) -> None:
    async def run() -> None:
        await ensure_topics(kafka, load_topic_specs())
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for journey, event in items:
                topic = kafka.physical(Topic.RUM_BEACONS)
                await producer.send(topic, orjson.dumps(event), key=journey.encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def _worker(kafka: KafkaSettings, dsn: str, app_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOURNEYLENS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "JOURNEYLENS_CLICKHOUSE_DSN": dsn,
        "JOURNEYLENS_WORKER_APP_ID": app_id,
        "JOURNEYLENS_CATALOG_PATH": str(CATALOG),
        "JOURNEYLENS_WORKER_BATCH_MAX_EVENTS": "60",
        "JOURNEYLENS_WORKER_SINK_FLUSH_S": "0.2",
        "JOURNEYLENS_WORKER_SESSION_TIMEOUT_S": "10",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "journeylens.cli.main", "worker", "--loglevel", "info"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        cwd=log.parent,  # the worker's data directory (<app id>-data) goes there
    )  # fmt: skip


def _wait(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    explain: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: S110 - ClickHouse may be down on purpose
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; {explain()}")


def _count(dsn: str, sql: str) -> int:
    client = make_client(dsn, create_database=False)
    try:
        return int(client.query(sql).result_rows[0][0])
    finally:
        client.close()


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


def _assert_exact(dsn: str, produced: int) -> None:
    assert _count(dsn, "SELECT count() FROM rum_events FINAL") == produced
    client = make_client(dsn, create_database=False)
    try:
        rows = client.query(
            "SELECT journey, window_start, rum_page_views, rum_sessions FROM journey_aggregates "
            "FINAL WHERE step = '_journey' AND segment_dimension = 'all' ORDER BY journey, "
            "window_start"
        ).result_rows
    finally:
        client.close()
    assert len(rows) == len(JOURNEYS) * MINUTES
    assert all(views == VIEWS and sessions == 20 for _, _, views, sessions in rows), rows


def _windows_done(dsn: str) -> bool:
    sql = (
        "SELECT count() FROM journey_aggregates FINAL WHERE step = '_journey' "
        "AND segment_dimension = 'all'"
    )
    return _count(dsn, sql) >= len(JOURNEYS) * MINUTES


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"drill-{uuid.uuid4().hex[:8]}."
    )


def test_clickhouse_away_for_60s_worker_waits_and_catches_up(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    stack = StackSettings(
        data_dir=tmp_path / "stack",
        clickhouse_http_port=free_port(),
        clickhouse_tcp_port=free_port(),
    )
    server = ClickHouseServer(stack)
    server.start()
    dsn = server.http_dsn
    client = make_client(dsn)
    apply_migrations(client, parse_dsn(dsn).database)
    client.close()
    items = _input()
    _produce(kafka, items[: len(items) // 3])
    worker = _worker(kafka, dsn, f"drill-ch-{uuid.uuid4().hex[:6]}", tmp_path / "worker.log")
    try:
        _wait(lambda: _count(dsn, "SELECT count() FROM rum_events") > 0, 120, "first rows")
        server.stop()
        _produce(kafka, items[len(items) // 3 :])  # beacons keep arriving while it is away
        time.sleep(60)
        assert worker.poll() is None, "the worker must wait for ClickHouse, not die"
        server.start()
        _wait(lambda: _windows_done(dsn), 180, "the worker to catch up")
        _wait(lambda: _count(dsn, "SELECT count() FROM rum_events FINAL") == len(items), 60, "raw")
        _assert_exact(dsn, len(items))
    finally:
        _stop(worker)
        server.stop()


def test_two_workers_share_partitions_then_one_dies(
    kafka: KafkaSettings,
    clickhouse_database_factory: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    dsn = clickhouse_database_factory("drill_pair").dsn()
    items = _input()
    app_id = f"drill-pair-{uuid.uuid4().hex[:6]}"
    _produce(kafka, items[:60])  # topics exist before the group forms
    first = _worker(kafka, dsn, app_id, tmp_path / "a.log")
    second = _worker(kafka, dsn, app_id, tmp_path / "b.log")
    try:
        _wait(lambda: _count(dsn, "SELECT count() FROM rum_events") > 0, 120, "the pair to start")
        _produce(kafka, items[60:])
        _wait(lambda: _count(dsn, "SELECT count() FROM rum_events") >= 300, 120, "progress")
        _stop(first, signal.SIGKILL)
        _wait(lambda: _windows_done(dsn), 180, "the survivor to finish every window")
        # The survivor takes the dead worker's partitions after the session timeout, restores
        # their state from the changelog and re-reads their uncommitted tail.
        raw = "SELECT count() FROM rum_events FINAL"
        _wait(
            lambda: _count(dsn, raw) == len(items),
            180,
            f"{len(items)} raw rows",
            lambda: (
                f"{_count(dsn, raw)} rows; survivor log: "
                + (tmp_path / "b.log").read_text(errors="replace")[-1500:]
            ),
        )
        _assert_exact(dsn, len(items))
    finally:
        _stop(first)
        _stop(second)
