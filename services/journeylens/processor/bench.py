"""``journeylens bench worker``: RUM events/s of one worker process, Kafka in → ClickHouse out.

What runs, all on loopback:

1. Kafka (the configured broker when it answers, else a throw-away one) and ClickHouse (the
   configured ``http://`` DSN when it answers, else a throw-away local server), a fresh topic
   prefix and database per run.
2. The worker as a real ``journeylens worker`` process (working directory: the run's temporary
   directory) is started on a few warm-up events (so it has joined its group). Runs of
   ``--events`` RUM events each, spread over the active journey × step × segment keys:

   - **backlog** (the measure the targets use; ``--runs`` rounds, medians reported): the worker
     is stopped, the round's events are produced (whole record batches, event times after the
     previous round's), and a new worker process (same group: committed offsets and
     changelogged state) works through them. Its rate is taken like the plain consumer's,
     from the first stored row of the run to the last (start-up and group join are not
     counted; the rows of the first batch are not counted either).
   - **live**: the events are produced while the worker runs; the rate is from the first send
     until every event is stored, so on one machine the producer and the broker's produce
     work share the cores with it.

   Peak RSS is read from /proc (VmHWM), and the CPU time of the worker, the broker, the
   ClickHouse server and this process (the producer) over each run from /proc, when they run
   on this machine.
3. Baseline: a plain aiokafka consumer that only decodes (orjson) the same topic, measured after
   each backlog round (so each round's ratio compares two rates taken back to back).

Printed: both worker rates, the plain consumer's, the ratio (backlog / plain; medians of the
rounds, with every round's figures), peak RSS, the
targets (≥ 50,000 events/s, ≥ 0.5 of the plain consumer, ≤ 500 MB with 1,000 active keys),
and where the CPU went: per event for each process, the worker's events per CPU second (what
it would do with a core of its own), and the rate the broker, ClickHouse and the producer alone
leave room for on this machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import orjson
import yaml

from journeylens.settings import ClickHouseSettings, KafkaSettings, StackSettings, Topic
from journeylens.stack.process import process_cpu_s
from journeylens.stack.throwaway import bench_kafka, throwaway_clickhouse
from journeylens.stack.topics import ensure_topics, load_topic_specs
from journeylens.storage.client import make_client, parse_dsn
from journeylens.storage.migrations import apply_migrations

TARGET_EVENTS_PER_S = 50_000
TARGET_RATIO = 0.5
TARGET_RSS_MB = 500
COUNTRIES = ("FR", "DE", "US", "GB", "ES", "IT", "NL", "BR", "IN", "JP", "CA", "PL")
DEVICES = ("desktop", "mobile", "tablet")
BROWSERS = ("Chrome", "Safari", "Firefox", "Edge", "Chrome Mobile", "Samsung Internet")
CONNECTIONS = ("4g", "3g", "wifi", "ethernet", "unknown")
BASE = 1_795_600_800  # 2026-11-25T10:00:00Z
WARMUP_BASE = BASE - 3600
WARMUP_EVENTS = 500
"""Sent before the measured events, so the worker has joined its group and started."""


@dataclass
class WorkerBenchResult:
    events: int
    """Events of each run (backlog and live)."""
    active_keys: int
    plain_consumer_events_per_s: float
    worker_events_per_s: float
    """The backlog run: a topic already holding the events, like the plain consumer's."""
    live_events_per_s: float
    """The live run: from the first send while the worker runs until the last row."""
    ratio: float
    """Backlog rate / plain consumer rate (both read a topic that holds the events): the median
    of the rounds' ratios."""
    worker_rounds_events_per_s: list[float]
    plain_rounds_events_per_s: list[float]
    ratio_rounds: list[float]
    worker_peak_rss_mb: float
    worker_cpu_us_per_event: float
    """The worker's CPU time (user + system) per event over the backlog run (the median
    round's; so are the other backlog CPU figures)."""
    worker_events_per_cpu_s: float
    """What one worker process would do with a core of its own (events / its CPU seconds)."""
    cpu_us_per_event: dict[str, float]
    """CPU time per event of each local process over the backlog run (where the cores went)."""
    live_cpu_us_per_event: dict[str, float]
    """The same over the live run (the producer and the broker's produce work included)."""
    others_ceiling_events_per_s: float | None
    """Events/s the CPU of everything but the worker (broker, ClickHouse, producer) allows on
    this machine's cores over the live run, with a worker that cost nothing."""
    cores: int
    load_average_1m: float
    """Before the run: other load on the machine makes every rate lower."""
    aggregate_rows: int
    targets: dict[str, bool]


def bench_catalog(journeys: int, steps: int) -> dict[str, Any]:
    return {
        "version": 1,
        "apps": [{"id": "bench", "site_key": "pk_bench_00000001"}],
        "journeys": [
            {
                "id": f"j{j}",
                "name": f"Bench journey {j}",
                "app": "bench",
                "steps": [{"id": f"s{s}", "rum": {"path": f"^/j{j}/s{s}$"}} for s in range(steps)],
            }
            for j in range(journeys)
        ],
    }


def active_keys(journeys: int, steps: int) -> int:
    segments = 1 + len(COUNTRIES) + len(DEVICES) + len(BROWSERS) + len(CONNECTIONS)
    return journeys * steps * segments


def make_events(
    n: int, journeys: int, steps: int, minutes: int, seed: int = 7, base: int = BASE
) -> list[bytes]:
    """``n`` RUM events over ``minutes`` windows starting at ``base``, plus a closer per journey."""
    rng = random.Random(seed)  # noqa: S311 - reproducible bench data, not secrets
    prefix = f"{seed}-"
    out: list[bytes] = []
    for i in range(n):
        j, s = rng.randrange(journeys), rng.randrange(steps)
        ts = base + (i * minutes * 60) // n
        out.append(orjson.dumps(_event(prefix, i, f"j{j}", f"s{s}", ts, rng)))
    for j in range(journeys):  # moves every journey's watermark past the last window
        closer = _event(prefix, n + j, f"j{j}", "s0", base + (minutes + 5) * 60, rng)
        out.append(orjson.dumps(closer))
    return out


def _event(
    prefix: str, i: int, journey: str, step: str, ts: int, rng: random.Random
) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{i % 1000:03d}Z"
    return {
        "event_id": f"b{prefix}{i}",
        "kind": "page_view",
        "source": "journeylens",
        "timestamp": stamp,
        "received_at": stamp,
        "app": "bench",
        "journey": journey,
        "step": step,
        "session_id": f"s{rng.randrange(20_000)}",
        "page_id": f"p{i}",
        "url": f"https://shop.example.com/{journey}/{step}",
        "path": f"/{journey}/{step}",
        "navigation_type": "navigate",
        "vitals": {
            "lcp_ms": round(rng.lognormvariate(7.4, 0.5), 1),
            "inp_ms": round(rng.lognormvariate(4.6, 0.6), 1),
            "cls": round(rng.random() * 0.2, 3),
            "fcp_ms": round(rng.lognormvariate(7.0, 0.4), 1),
            "ttfb_ms": round(rng.lognormvariate(5.8, 0.5), 1),
        },
        "navigation": {"duration_ms": round(rng.lognormvariate(7.6, 0.5), 1)},
        "errors": [],
        "api_errors": [],
        "dependencies": [
            {"host": "cdn.example.com", "requests": 8, "failures": 0,
             "total_duration_ms": 640.0, "max_duration_ms": 190.0, "transfer_bytes": 120_000}
        ],
        "context": {
            "device_class": rng.choice(DEVICES),
            "browser": rng.choice(BROWSERS),
            "os": "Android",
            "connection_type": rng.choice(CONNECTIONS),
            "country": rng.choice(COUNTRIES),
        },
        "synthetic": False,
        "sample_rate": 1.0,
        "schema_version": 1,
    }  # fmt: skip


PRODUCE_CHUNK = 50_000
"""Events the bench produces per `produce_batched` call (a progress line after each)."""


async def produce(kafka: KafkaSettings, values: list[bytes], progress: Any) -> None:
    """Produce ``values`` keyed by journey, as whole record batches (`produce_batched`, as the
    worker's outputs go: partitioned like ``send`` would), 50,000 at a time: the producer's own
    CPU is not what is measured, and a per-message ``send`` costs as much CPU as the broker."""
    from aiokafka import AIOKafkaProducer

    from journeylens.processor.outputs import produce_batched

    topic = kafka.physical(Topic.RUM_BEACONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, acks=1, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for begin in range(0, len(values), PRODUCE_CHUNK):
            chunk = values[begin : begin + PRODUCE_CHUNK]
            keyed = [(v[v.find(b'"journey":"') + 11 :].split(b'"', 1)[0], v) for v in chunk]
            await produce_batched(producer, topic, keyed)
            if begin + len(chunk) < len(values):
                progress(f"produced {begin + len(chunk):,} events")
    finally:
        await producer.stop()


async def plain_consumer_rate(kafka: KafkaSettings, expected: int) -> float:
    """Events/s of a consumer that only decodes the topic (first message to last)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        kafka.physical(Topic.RUM_BEACONS),
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"bench-plain-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                if not started:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


@contextmanager
def clickhouse_for_bench(work: Path, progress: Any) -> Iterator[str]:
    """An http DSN: the configured server when it answers, else a throw-away local server."""
    from journeylens.stack.clickhouse_server import server_is_ready
    from journeylens.stack.local import resolve_clickhouse_dsn

    configured = resolve_clickhouse_dsn(ClickHouseSettings(), StackSettings())
    target = parse_dsn(configured)
    database = f"bench_{uuid.uuid4().hex[:6]}"
    if not target.embedded and server_is_ready(target.host, target.port):
        dsn = target.dsn().rsplit("/", 1)[0] + f"/{database}"
        try:
            yield dsn
        finally:  # the run's database, on a server that outlives it
            try:
                client = make_client(dsn, create_database=False)
                client.command(f"DROP DATABASE IF EXISTS {database}")
                client.close()
            except Exception as exc:  # noqa: BLE001 - a failed clean-up must not hide the result
                progress(f"could not drop the run's database {database}: {exc}; drop it")
        return
    with throwaway_clickhouse(work, progress) as server:
        yield server.http_dsn.rsplit("/", 1)[0] + f"/{database}"


_COUNT_CLIENTS: dict[str, Any] = {}
POLL_S = 0.1
"""How often the bench counts the stored rows while a run goes (at most ~1 % of a ~15 s run)."""


def _count(dsn: str, sql: str) -> int:
    """One client per server for the whole bench: a new client per poll costs the server a few
    queries more (version, settings) each time, CPU the bench would charge to ClickHouse and
    take from the worker it measures."""
    client = _COUNT_CLIENTS.get(dsn)
    if client is None:
        client = _COUNT_CLIENTS[dsn] = make_client(dsn, create_database=False)
    return int(client.query(sql).result_rows[0][0])


def _close_count_clients() -> None:
    for client in _COUNT_CLIENTS.values():
        client.close()
    _COUNT_CLIENTS.clear()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker_bench(
    events: int, journeys: int, steps: int, minutes: int, work: Path, progress: Any, runs: int = 1
) -> WorkerBenchResult:
    catalog_path = work / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(bench_catalog(journeys, steps)))
    values = make_events(events, journeys, steps, minutes)
    with bench_kafka(work, progress) as kafka, clickhouse_for_bench(work, progress) as dsn:
        asyncio.run(ensure_topics(kafka, load_topic_specs(), progress))
        client = make_client(dsn)
        apply_migrations(client, parse_dsn(dsn).database, progress)
        client.close()
        warmup = make_events(WARMUP_EVENTS, journeys, steps, 1, seed=11, base=WARMUP_BASE)
        asyncio.run(produce(kafka, warmup, progress))
        # each backlog's events come after the previous run's in event time (windows follow)
        backlogs = [
            make_events(
                events, journeys, steps, minutes, seed=13 + i, base=_after(minutes, rounds=i + 1)
            )
            for i in range(runs)
        ]
        load = os.getloadavg()[0]
        plains: list[float] = []

        def plain_after_round(total: int) -> None:
            progress("plain aiokafka consumer (decode only), over the same topic")
            plains.append(asyncio.run(plain_consumer_rate(kafka, total)))

        try:
            live, rounds = _measure_worker(
                kafka,
                dsn,
                catalog_path,
                (warmup, values, backlogs),
                work,
                progress,
                plain_after_round,
            )
        finally:
            _close_count_clients()
    keys = active_keys(journeys, steps)
    ratios = [r.events_per_s / plain for r, plain in zip(rounds, plains, strict=True)]
    rate = statistics.median(r.events_per_s for r in rounds)
    plain = statistics.median(plains)
    ratio = statistics.median(ratios)
    run = sorted(rounds, key=lambda r: r.events_per_s)[len(rounds) // 2]  # the median round
    rss = max(live.peak_rss_mb, *(r.peak_rss_mb for r in rounds))
    backlog = backlogs[0]
    per_event = {name: round(s / len(backlog) * 1e6, 1) for name, s in run.cpu_s.items()}
    live_per_event = {name: round(s / len(values) * 1e6, 1) for name, s in live.cpu_s.items()}
    others = [us for name, us in live_per_event.items() if name != "worker"]
    cores = os.cpu_count() or 1
    return WorkerBenchResult(
        events=len(values),
        active_keys=keys,
        plain_consumer_events_per_s=round(plain),
        worker_events_per_s=round(rate),
        live_events_per_s=round(live.events_per_s),
        ratio=round(ratio, 3),
        worker_rounds_events_per_s=[round(r.events_per_s) for r in rounds],
        plain_rounds_events_per_s=[round(p) for p in plains],
        ratio_rounds=[round(r, 3) for r in ratios],
        worker_peak_rss_mb=round(rss, 1),
        worker_cpu_us_per_event=per_event["worker"],
        worker_events_per_cpu_s=round(1e6 / max(per_event["worker"], 1e-6)),
        cpu_us_per_event=per_event,
        live_cpu_us_per_event=live_per_event,
        others_ceiling_events_per_s=round(cores * 1e6 / sum(others)) if len(others) == 3 else None,
        cores=cores,
        load_average_1m=round(load, 2),
        aggregate_rows=run.aggregate_rows,
        targets={
            f"worker >= {TARGET_EVENTS_PER_S:,} events/s": rate >= TARGET_EVENTS_PER_S,
            f"worker/plain >= {TARGET_RATIO}": ratio >= TARGET_RATIO,
            f"peak RSS <= {TARGET_RSS_MB} MB with {keys:,} keys": rss <= TARGET_RSS_MB,
        },
    )


@dataclass
class _WorkerRun:
    events_per_s: float
    peak_rss_mb: float
    cpu_s: dict[str, float]
    """CPU seconds over the measured run: the worker, and the broker, ClickHouse server and
    this process (the producer) when they run on this machine."""
    aggregate_rows: int


def _listener_pid(port: int) -> int | None:
    """The local process listening on TCP ``port`` (Linux /proc), if any can be seen."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
    return None


def _server_pids(kafka: KafkaSettings, dsn: str) -> dict[str, int]:
    ports = {
        "kafka broker": int(kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1]),
        "clickhouse server": parse_dsn(dsn).port,
    }
    pids = {name: _listener_pid(port) for name, port in ports.items()}
    return {name: pid for name, pid in pids.items() if pid is not None}


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _after(minutes: int, rounds: int = 1) -> int:
    """Where backlog round ``rounds`` (from 1) starts: past the windows and closers of the live
    run and of the rounds before."""
    return BASE + rounds * (minutes + 10) * 60


def _measure_worker(
    kafka: KafkaSettings,
    dsn: str,
    catalog: Path,
    runs: tuple[list[bytes], list[bytes], list[list[bytes]]],
    work: Path,
    progress: Any,
    after_round: Any,
) -> tuple[_WorkerRun, list[_WorkerRun]]:
    """The live run, then the backlog rounds (see the module docstring); each ends when every
    event is stored raw. ``after_round(events in the topic)`` runs after each round."""
    warmup, values, backlogs = runs
    env = {
        **os.environ,
        "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOURNEYLENS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "JOURNEYLENS_CLICKHOUSE_DSN": dsn,
        "JOURNEYLENS_CATALOG_PATH": str(catalog),
        # named with the run's topic prefix, so its changelog topics go with the run's topics
        "JOURNEYLENS_WORKER_APP_ID": f"{kafka.topic_prefix}worker",
    }
    stored = len(warmup)
    with _worker_process(env, work, "worker.log") as worker:
        progress("starting the worker on the warm-up events")
        _wait_for(lambda: _count(dsn, RAW_COUNT) >= stored, worker, 180)
        progress(f"live run: producing {len(values):,} events while the worker runs")
        pids = {"worker": worker.pid, **_server_pids(kafka, dsn)}
        cpu_before = {name: process_cpu_s(pid) for name, pid in pids.items()}
        own_before = _own_cpu_s()
        started = time.perf_counter()
        asyncio.run(produce(kafka, values, progress))
        stored += len(values)
        done_at = _wait_for(lambda: _count(dsn, RAW_COUNT) >= stored, worker, 900, progress, dsn)
        cpu_s = {name: process_cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu_s["producer (bench process)"] = _own_cpu_s() - own_before
        live = _WorkerRun(
            len(values) / max(done_at - started, 1e-6), _peak_rss_mb(worker.pid), cpu_s, 0
        )
    rounds: list[_WorkerRun] = []
    for number, backlog in enumerate(backlogs, start=1):
        rounds.append(
            _backlog_round(kafka, dsn, env, backlog, stored, work, progress, number, len(backlogs))
        )
        stored += len(backlog)
        after_round(stored)
    return live, rounds


def _backlog_round(
    kafka: KafkaSettings,
    dsn: str,
    env: dict[str, str],
    backlog: list[bytes],
    stored: int,
    work: Path,
    progress: Any,
    number: int,
    total: int,
) -> _WorkerRun:
    """One backlog round: ``stored`` rows are in ClickHouse before it."""
    label = f"backlog run {number}/{total}"
    progress(f"{label}: worker stopped, producing {len(backlog):,} events")
    asyncio.run(produce(kafka, backlog, progress))
    with _worker_process(env, work, f"worker-backlog-{number}.log") as worker:
        progress(f"{label}: a new worker process works through them")
        seen: dict[str, int] = {}

        def grown() -> bool:
            seen["rows"] = _count(dsn, RAW_COUNT)
            return seen["rows"] > stored

        first_at = _wait_for(grown, worker, 180)
        first_count = seen["rows"]
        pids = {"worker": worker.pid, **_server_pids(kafka, dsn)}
        cpu_before = {name: process_cpu_s(pid) for name, pid in pids.items()}
        stored += len(backlog)
        done_at = _wait_for(lambda: _count(dsn, RAW_COUNT) >= stored, worker, 900, progress, dsn)
        cpu_s = {name: process_cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
        counted = stored - first_count
        if counted < len(backlog) // 2:
            raise click.ClickException(
                f"the first batch of the backlog run stored {len(backlog) - counted:,} of "
                f"{len(backlog):,} events: too few left to time; raise --events"
            )
        rate = counted / max(done_at - first_at, 1e-6)
        # CPU over the timed span only, scaled to the whole backlog for the per-event figures
        scale = len(backlog) / counted
        return _WorkerRun(
            rate,
            _peak_rss_mb(worker.pid),
            {name: seconds * scale for name, seconds in cpu_s.items()},
            _count(dsn, "SELECT count() FROM journey_aggregates"),
        )


RAW_COUNT = "SELECT count() FROM rum_events"


@contextmanager
def _worker_process(
    env: dict[str, str], work: Path, log_name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``journeylens worker`` process, stopped (SIGTERM: it commits and leaves its group)
    when the block ends."""
    log = (work / log_name).open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "journeylens.cli.main", "worker"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=work,
    )  # fmt: skip
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


def _wait_for(
    predicate: Any, worker: subprocess.Popen[bytes], timeout_s: float,
    progress: Any = None, dsn: str | None = None,
) -> float:  # fmt: skip
    """When ``predicate()`` first held (``time.perf_counter``)."""
    deadline = time.monotonic() + timeout_s
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise click.ClickException(f"the worker exited with {worker.returncode}")
        if predicate():
            return time.perf_counter()
        if progress is not None and dsn and time.monotonic() - last_report > 5:
            progress(f"worker stored {_count(dsn, RAW_COUNT):,} rows")
            last_report = time.monotonic()
        time.sleep(POLL_S)
    raise click.ClickException(f"the worker did not finish within {timeout_s:.0f}s")


def render(result: WorkerBenchResult) -> str:
    r = result
    lines = [
        f"events per run: {r.events:,}   active journey x step x segment keys: {r.active_keys:,}",
        f"plain aiokafka consumer (decode only): {r.plain_consumer_events_per_s:>10,.0f} events/s",
        f"worker, backlog (Kafka -> aggregates + raw rows): {r.worker_events_per_s:>10,.0f}"
        " events/s",
        f"worker, live (while the producer writes): {r.live_events_per_s:>10,.0f} events/s",
        f"ratio worker (backlog) / plain: {r.ratio:.3f} (median of {len(r.ratio_rounds)} rounds)",
        "rounds: worker "
        + " / ".join(f"{x:,.0f}" for x in r.worker_rounds_events_per_s)
        + ", plain "
        + " / ".join(f"{x:,.0f}" for x in r.plain_rounds_events_per_s)
        + ", ratio "
        + " / ".join(f"{x:.3f}" for x in r.ratio_rounds),
        f"worker peak RSS: {r.worker_peak_rss_mb:.1f} MB   aggregate rows: {r.aggregate_rows:,}",
        f"worker CPU: {r.worker_cpu_us_per_event:.1f} µs/event"
        f" ({r.worker_events_per_cpu_s:,.0f} events per CPU second)",
        "CPU per event, backlog: "
        + ", ".join(f"{name} {us:.1f} µs" for name, us in r.cpu_us_per_event.items()),
        "CPU per event, live: "
        + ", ".join(f"{name} {us:.1f} µs" for name, us in r.live_cpu_us_per_event.items()),
        f"machine: {r.cores} cores, load average {r.load_average_1m} before the run",
    ]
    if r.others_ceiling_events_per_s is not None:
        lines.append(
            f"ceiling set by the broker, ClickHouse and the producer on {r.cores} cores: "
            f"{r.others_ceiling_events_per_s:,.0f} events/s (with a worker that cost nothing)"
        )
    lines += [f"target {name}: {'met' if met else 'NOT met'}" for name, met in r.targets.items()]
    return "\n".join(lines)


@click.command("worker")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--events", type=click.IntRange(10_000, 5_000_000), default=300_000, show_default=True
)
@click.option("--journeys", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--steps", type=click.IntRange(1, 20), default=4, show_default=True)
@click.option("--minutes", type=click.IntRange(1, 120), default=5, show_default=True)
@click.option(
    "--runs",
    type=click.IntRange(1, 9),
    default=3,
    show_default=True,
    help="Backlog rounds, each followed by the plain consumer; medians are reported.",
)
def bench_worker(
    as_json: bool, events: int, journeys: int, steps: int, minutes: int, runs: int
) -> None:
    """RUM events/s of one worker vs a plain decoding consumer, and its peak RSS."""

    def progress(line: str) -> None:
        click.echo(f"  {line}", err=True)

    with tempfile.TemporaryDirectory(prefix="jl-bench-worker-") as tmp:
        try:
            result = run_worker_bench(
                events, journeys, steps, minutes, Path(tmp), progress, runs=runs
            )
        except Exception:
            log = Path(tmp) / "worker.log"
            if log.exists():
                click.echo(log.read_text(errors="replace")[-3000:], err=True)
            raise
    click.echo(json.dumps(asdict(result), indent=2) if as_json else render(result))
