"""The live run of ``journeylens bench detection``: one scenario in real time through Kafka.

What runs, all real and on loopback:

- Kafka and ClickHouse: throw-away ones on free ports in a scratch directory
  (:mod:`journeylens.stack.throwaway`), or the ones a caller passes (the integration test's
  session fixtures); a topic prefix and a database of the run's own;
- the collector and the worker as ``journeylens collector`` / ``journeylens worker`` child
  processes, wired and supervised as ``journeylens up`` does it (:mod:`journeylens.stack.up`),
  with short windows (``JOURNEYLENS_WORKER_WINDOW_S`` / ``_GRACE_S``);
- this process: the traffic model's users in real time (event time = wall time) through the
  collector's HTTP endpoints, as ``journeylens simulate`` sends them (our beacon JSON, some
  vitals as web-vitals reports); the model's probe results onto ``synthetic.results.v1`` with
  the probe's own publisher, each when its run finishes; and a plain aiokafka consumer of
  ``experience.alerts.v1`` (and of ``experience.aggregates.v1``, to follow the worker).

Time is scaled, not faked: a window of ``window_s`` seconds stands for the one-minute window.
The traffic is flat at ``sessions_per_minute`` (1,200 by default: a 10 s window then holds about
as many views per step as a minute of the fake-clock run around its peak), and every journey is
probed once per window from each probe location (the catalog's interval is 60 s for 60 s
windows). The model runs ``preroll_s`` unsent first, so sessions are already under way when the
first beacon leaves.

Baselines: an anomaly needs a baseline band, which the detector gives only after
``BaselineParams.warmup_windows`` (10) windows; before that nothing alarms
(``alarm_during_warmup`` is off), and the SLO burn-rate rules wait for a quarter of their long
window (15 min at least), so they cannot fire in a run this short. No state is seeded: the
worker starts empty, as a fresh deployment would, and learns from ``warmup_windows`` real-time
windows of steady traffic. The report says how many of them were judged against a band
("armed"); an alert in the warm-up is a false alert.

Then the scenario's fault starts at a window boundary and lasts ``fault_windows`` windows;
``recovery_windows`` of healthy traffic follow, then ``tail_windows`` more so that every judged
window closes (a window closes on event time, which only traffic moves on). The alerts are
judged as in the fake-clock runs (their event time, in windows from the fault's start; the
classification; incidents and reopenings), and the wall-clock time from the injection to the
first alert consumed from Kafka is measured beside it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from journeylens.contracts.catalog import Catalog, load_catalog
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.synthetic_results_v1 import SyntheticResult
from journeylens.domain.anomaly import AnomalyParams
from journeylens.settings import (
    ClickHouseSettings,
    KafkaSettings,
    StackSettings,
    Topic,
)
from journeylens.simulation.detection_bench import (
    FIRING,
    ScenarioResult,
    VolumeStats,
    epoch,
    firsts,
    judge_alerts,
)
from journeylens.simulation.live import BeaconSender, LiveTarget, page_due, pages_in_order
from journeylens.simulation.scenarios import scenario as scenario_named
from journeylens.simulation.traffic import TrafficModel, TrafficProfile
from journeylens.stack.local import LocalStack, migrate
from journeylens.stack.process import Progress, free_port, no_progress
from journeylens.stack.throwaway import throwaway_clickhouse, throwaway_kafka
from journeylens.stack.topics import ensure_topics, load_topic_specs
from journeylens.stack.up import Ports, Role, Supervisor, UpPlan
from journeylens.storage.client import make_client
from journeylens.synthetic.publisher import KafkaResultPublisher

log = logging.getLogger(__name__)

LIVE_ROLES = ("collector", "worker")
SEND_CONCURRENCY = 64
BASELINE_WARMUP_WINDOWS = AnomalyParams().baseline.warmup_windows
"""Windows a baseline learns before it gives a band (nothing alarms until then)."""


class LiveBenchError(RuntimeError):
    """The live run could not be carried out (a component died or never answered)."""


@dataclass(frozen=True)
class LiveConfig:
    scenario: str = "payment-outage"
    window_s: int = 10
    grace_s: int = 3
    warmup_windows: int = 15
    fault_windows: int = 6
    recovery_windows: int = 3
    tail_windows: int = 2
    sessions_per_minute: float = 1200.0
    seed: int = 7
    preroll_s: float = 180.0
    drain_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        scenario_named(self.scenario)  # raises on an unknown name
        if self.window_s < 2 or not 0 <= self.grace_s < self.window_s:
            raise ValueError("need window_s >= 2 and 0 <= grace_s < window_s")
        if self.warmup_windows <= BASELINE_WARMUP_WINDOWS:
            raise ValueError(
                f"warmup_windows must exceed the baselines' own warm-up "
                f"({BASELINE_WARMUP_WINDOWS} windows), or no window of it is judged"
            )
        if self.fault_windows < 1 or self.tail_windows < 1:
            raise ValueError("need at least one fault window and one tail window")

    @property
    def armed_windows(self) -> int:
        """Warm-up windows judged against a baseline band (after the baselines' warm-up)."""
        return self.warmup_windows - BASELINE_WARMUP_WINDOWS

    @property
    def profile(self) -> TrafficProfile:
        return TrafficProfile(
            peak_sessions_per_minute=self.sessions_per_minute,
            trough_ratio=1.0,
            probe_interval_s=float(self.window_s),
        )


@dataclass(frozen=True)
class LiveServices:
    """Kafka (with this run's topic prefix) and a migrated ClickHouse database."""

    kafka: KafkaSettings
    clickhouse_dsn: str


@dataclass
class LiveResult:
    config: LiveConfig
    scenario: ScenarioResult
    """Judged as the fake-clock runs are: event time, in windows from the fault's start."""
    detect_s: float | None
    """Wall clock from the injection to the first alert of the journey consumed from Kafka."""
    alert_after_window_s: float | None
    """How long after the end of its window that alert was consumed (grace, waiting for the
    watermark, batching, Kafka)."""
    false_alerts: list[str]
    """``journey: title`` of every incident opened during the warm-up."""
    beacon_requests: int
    rejected_requests: int
    probe_results: int
    send_lag_ms_p99: float
    send_lag_ms_max: float
    window_close_s_median: float | None
    """Wall clock from a window's end to its aggregates on Kafka (median and max)."""
    window_close_s_max: float | None
    stored_alert_events: int
    """Alert events in ClickHouse's ``alerts`` table (the worker's other sink)."""
    consumed_alert_events: int
    seconds: float

    @property
    def detect_wall_windows(self) -> float | None:
        return None if self.detect_s is None else self.detect_s / self.config.window_s

    @property
    def warmup_passed(self) -> bool:
        return not self.false_alerts

    @property
    def passed(self) -> bool:
        return self.scenario.passed and self.warmup_passed

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        wall = self.detect_wall_windows
        return {
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "config": {
                "scenario": cfg.scenario,
                "window_s": cfg.window_s,
                "grace_s": cfg.grace_s,
                "warmup_windows": cfg.warmup_windows,
                "baseline_warmup_windows": BASELINE_WARMUP_WINDOWS,
                "armed_warmup_windows": cfg.armed_windows,
                "fault_windows": cfg.fault_windows,
                "recovery_windows": cfg.recovery_windows,
                "sessions_per_minute": cfg.sessions_per_minute,
                "probe_interval_s": cfg.window_s,
                "probe_locations": list(cfg.profile.probe_locations),
                "seed": cfg.seed,
            },
            "scenario": self.scenario.to_json(),
            "wall_clock": {
                "detect_s": _round(self.detect_s, 2),
                "detect_windows": _round(wall, 2),
                "alert_after_window_end_s": _round(self.alert_after_window_s, 2),
                "window_close_s_median": _round(self.window_close_s_median, 2),
                "window_close_s_max": _round(self.window_close_s_max, 2),
                "send_lag_ms_p99": round(self.send_lag_ms_p99, 1),
                "send_lag_ms_max": round(self.send_lag_ms_max, 1),
            },
            "warmup": {
                "windows": cfg.warmup_windows,
                "seconds": cfg.warmup_windows * cfg.window_s,
                "false_alerts": len(self.false_alerts),
                "alerts": self.false_alerts,
                "passed": self.warmup_passed,
            },
            "traffic": {
                "beacon_requests": self.beacon_requests,
                "rejected_requests": self.rejected_requests,
                "probe_results": self.probe_results,
            },
            "alert_events": {
                "consumed_from_kafka": self.consumed_alert_events,
                "stored_in_clickhouse": self.stored_alert_events,
            },
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# -------------------------------------------------------------------------------- services


@contextmanager
def throwaway_services(work: Path, progress: Progress = no_progress) -> Iterator[LiveServices]:
    """A throw-away Kafka broker and ClickHouse server (free ports, under ``work``), with the
    topics created and a migrated database; both stopped when the block ends."""
    run = uuid.uuid4().hex[:6]
    with throwaway_kafka(work, progress) as broker, throwaway_clickhouse(work, progress) as server:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"live-{run}."
        )
        yield prepare_services(kafka, server.http_dsn.rsplit("/", 1)[0] + f"/live_{run}", progress)


def prepare_services(kafka: KafkaSettings, dsn: str, progress: Progress) -> LiveServices:
    """Create the topics (with the prefix) and apply the migrations; both are idempotent."""
    asyncio.run(ensure_topics(kafka, load_topic_specs(), progress))
    migrate(dsn, progress)
    return LiveServices(kafka, dsn)


@dataclass
class LivePlan(UpPlan):
    """``journeylens up``'s wiring reduced to the collector and the worker, on the run's
    services, with short windows and a worker group of the run's own."""

    services: LiveServices | None = None
    catalog_path: Path = Path("infra/catalog/demo-shop.yaml")
    window_s: int = 60
    grace_s: int = 30
    app_id: str = "journeylens-live-bench"

    def environment(self) -> dict[str, str]:
        assert self.services is not None
        env = super().environment()
        env.update(
            {
                "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": self.services.kafka.bootstrap_servers,
                "JOURNEYLENS_KAFKA_TOPIC_PREFIX": self.services.kafka.topic_prefix,
                "JOURNEYLENS_CLICKHOUSE_DSN": self.services.clickhouse_dsn,
                "JOURNEYLENS_CATALOG_PATH": str(self.catalog_path.resolve()),
                "JOURNEYLENS_WORKER_APP_ID": self.app_id,
                "JOURNEYLENS_WORKER_WINDOW_S": str(self.window_s),
                "JOURNEYLENS_WORKER_GRACE_S": str(self.grace_s),
            }
        )
        return env

    def roles(self) -> list[Role]:
        return [role for role in super().roles() if role.name in LIVE_ROLES]


def live_plan(
    services: LiveServices, catalog_path: Path, config: LiveConfig, work: Path
) -> LivePlan:
    stack = LocalStack(
        StackSettings(data_dir=work),
        services.kafka,
        ClickHouseSettings(dsn=SecretStr(services.clickhouse_dsn)),
    )
    return LivePlan(
        stack,
        ports=Ports(collector=free_port()),
        simulator=False,
        probe=False,
        services=services,
        catalog_path=catalog_path,
        window_s=config.window_s,
        grace_s=config.grace_s,
        app_id=f"jl-live-{uuid.uuid4().hex[:6]}",
    )


# ------------------------------------------------------------------------------ schedule


@dataclass(frozen=True)
class Timeline:
    """Epoch seconds of the run's phases, all on window boundaries."""

    start: float
    injection: float
    fault_end: float
    judged_end: float
    stop: float

    @classmethod
    def plan(cls, config: LiveConfig, now: float, lead_s: float = 2.0) -> Timeline:
        w = config.window_s
        start = math.ceil((now + lead_s) / w) * w
        injection = start + config.warmup_windows * w
        fault_end = injection + config.fault_windows * w
        judged_end = fault_end + config.recovery_windows * w
        return cls(start, injection, fault_end, judged_end, judged_end + config.tail_windows * w)

    def phase(self, at: float) -> str:
        if at < self.injection:
            return "warm-up"
        if at < self.fault_end:
            return "fault"
        return "recovery" if at < self.judged_end else "tail"


@dataclass
class SendStats:
    """What this process sent, and how late (wall time behind the event time it was due)."""

    beacon_requests: int = 0
    rejected_requests: int = 0
    probe_results: int = 0
    lags: list[float] = field(default_factory=list)


@dataclass
class Watch:
    """What the run consumed from the worker's output topics, with the wall time of arrival."""

    alerts: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    volume: VolumeStats = field(default_factory=VolumeStats)
    close_delays: list[float] = field(default_factory=list)
    """Per closed window of a journey (``_journey``/``all`` row) from ``counted_from`` on:
    arrival − window end (earlier ones include the worker's start-up)."""
    closed_until: dict[str, float] = field(default_factory=dict)
    """journey → the latest window end seen."""
    counted_from: float = 0.0
    """Windows starting before this are not counted in ``volume`` (the warm-up's start)."""

    def add(self, topic_is_alert: bool, value: dict[str, Any], at: float) -> None:
        if topic_is_alert:
            self.alerts.append((at, value))
            return
        if value.get("step") != JOURNEY_LEVEL:
            if epoch(value["window_start"]) >= self.counted_from:
                self.volume.add([value])
            return
        if value.get("segment_dimension") != "all":
            return
        end = epoch(value["window_end"])
        journey = value["journey"]
        self.closed_until[journey] = max(self.closed_until.get(journey, 0.0), end)
        if end > self.counted_from:
            self.close_delays.append(at - end)


async def watch_outputs(kafka: KafkaSettings, watch: Watch, stop: asyncio.Event) -> None:
    """Consume the alerts and aggregates topics from their start until ``stop`` is set."""
    alerts = kafka.physical(Topic.ALERTS)
    consumer = AIOKafkaConsumer(
        alerts,
        kafka.physical(Topic.AGGREGATES),
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=f"{kafka.client_id}-live-bench",
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            at = time.time()
            for tp, records in batches.items():
                for record in records:
                    if record.value is not None:
                        watch.add(tp.topic == alerts, orjson.loads(record.value), at)
    finally:
        await consumer.stop()


# ----------------------------------------------------------------------------------- run


class LiveRun:
    """Sends the traffic in real time and watches the worker's outputs."""

    def __init__(
        self,
        catalog: Catalog,
        config: LiveConfig,
        services: LiveServices,
        collector_url: str,
        supervisor: Supervisor,
        progress: Progress,
    ) -> None:
        self.config = config
        self.services = services
        self.supervisor = supervisor
        self.progress = progress
        self.scenario = scenario_named(config.scenario)
        self.model = TrafficModel(catalog, config.profile, seed=config.seed)
        app = next(a for a in catalog.apps if a.id == config.profile.app)
        origin = next(o for o in app.allowed_origins if o != "*")
        target = LiveTarget(collector_url, app.site_key, origin, shop_services={})
        self.sender = BeaconSender(target, random.Random(config.seed))  # noqa: S311
        self.watch = Watch()
        self.stats = SendStats()
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(SEND_CONCURRENCY)

    async def run(self) -> Timeline:
        cfg = self.config
        stop_watch = asyncio.Event()
        watcher = asyncio.create_task(watch_outputs(self.services.kafka, self.watch, stop_watch))
        publisher = KafkaResultPublisher(self.services.kafka)
        await publisher.start()
        try:
            timeline = Timeline.plan(cfg, time.time())
            self.watch.counted_from = timeline.injection
            fault = self.scenario.fault(timeline.injection, timeline.fault_end)
            self.model.span(timeline.start - cfg.preroll_s, cfg.preroll_s)  # sessions under way
            self.model.faults = [fault]
            limits = httpx.Limits(max_connections=SEND_CONCURRENCY)
            async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
                await self._send(timeline, client, publisher)
                if self._inflight:
                    await asyncio.gather(*self._inflight)
            await self._drain(timeline)
        finally:
            stop_watch.set()
            await watcher
            await publisher.stop()
        return timeline

    async def _send(
        self, timeline: Timeline, client: httpx.AsyncClient, publisher: KafkaResultPublisher
    ) -> None:
        """Every page and probe result due in [start, stop), each at its time."""
        w = self.config.window_s
        due: list[tuple[float, int, bool, Any]] = []
        seq = 0
        next_span = timeline.start
        while True:
            # generate the next window's traffic about a second before it is due
            while next_span < timeline.stop and (not due or due[0][0] >= next_span - 1.0):
                self._report(timeline, next_span)
                events, probes = self.model.span(next_span, w)
                for page in pages_in_order(events):
                    heapq.heappush(due, (page_due(page), seq, True, page))
                    seq += 1
                for result in probes:
                    heapq.heappush(due, (epoch(result["finished_at"]), seq, False, result))
                    seq += 1
                next_span += w
            if not due:
                return
            at, _, is_page, item = heapq.heappop(due)
            if at >= timeline.stop:
                continue
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.stats.lags.append(max(0.0, time.time() - at))
            if is_page:
                self._spawn(self._send_page(client, item))
            else:
                self.stats.probe_results += 1
                self._spawn(publisher.publish(SyntheticResult.model_validate(item)))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _send_page(self, client: httpx.AsyncClient, page: list[dict[str, Any]]) -> None:
        async with self._slots:
            await self.sender.send_page(client, page)
        self.stats.beacon_requests = self.sender.sent
        self.stats.rejected_requests = self.sender.rejected

    def _report(self, timeline: Timeline, span: float) -> None:
        dead = self.supervisor.failed()
        if dead is not None:
            raise LiveBenchError(f"{dead[0].name} exited with {dead[1]} (see its log)")
        w = self.config.window_s
        index = int((span - timeline.start) // w)
        worker_at = max(self.watch.closed_until.values(), default=None)
        behind = "no window closed yet"
        if worker_at is not None:
            behind = f"last closed window ended {span - worker_at:.0f} s before this one"
        self.progress(
            f"window {index + 1}/{int((timeline.stop - timeline.start) // w)} "
            f"({timeline.phase(span)}): {self.stats.beacon_requests} beacon requests, "
            f"{self.stats.probe_results} probe results, {len(self.watch.alerts)} alert events; "
            f"worker: {behind}"
        )

    async def _drain(self, timeline: Timeline) -> None:
        """Wait until the worker closed every judged window of the scenario's journey."""
        journey = self.scenario.expected.journey
        deadline = time.monotonic() + self.config.drain_timeout_s
        while self.watch.closed_until.get(journey, 0.0) < timeline.judged_end:
            if time.monotonic() > deadline:
                raise LiveBenchError(
                    f"the worker did not close the windows of {journey!r} up to the end of the "
                    f"run within {self.config.drain_timeout_s:.0f} s"
                )
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # alerts are published with the aggregates of their window


def judge_live(
    config: LiveConfig,
    watch: Watch,
    timeline: Timeline,
    stats: SendStats,
    stored_alert_events: int,
    seconds: float,
) -> LiveResult:
    """Alerts up to the injection are false ones; those of windows ending in the fault and
    recovery are the scenario's, judged as the fake-clock runs are (``judge_alerts``)."""
    scenario = scenario_named(config.scenario)
    alerts = sorted(watch.alerts, key=lambda item: (epoch(item[1]["time"]), item[0]))
    warmup = [a for _, a in alerts if epoch(a["time"]) <= timeline.injection]
    judged = [
        (at, a) for at, a in alerts if timeline.injection < epoch(a["time"]) <= timeline.judged_end
    ]
    result = judge_alerts(
        scenario,
        [a for _, a in judged],
        timeline.injection,
        timeline.fault_end,
        config.window_s,
        dict(sorted(watch.volume.min_views.items())),
    )
    journey = scenario.expected.journey
    first = next(
        ((at, a) for at, a in judged if a["type"] == FIRING and a["data"]["journey"] == journey),
        None,
    )
    lags = sorted(stats.lags) or [0.0]
    delays = watch.close_delays
    return LiveResult(
        config=config,
        scenario=result,
        detect_s=None if first is None else first[0] - timeline.injection,
        alert_after_window_s=None if first is None else first[0] - epoch(first[1]["time"]),
        false_alerts=[f"{a['data']['journey']}: {a['data']['title']}" for a in firsts(warmup)],
        beacon_requests=stats.beacon_requests,
        rejected_requests=stats.rejected_requests,
        probe_results=stats.probe_results,
        send_lag_ms_p99=1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))],
        send_lag_ms_max=1000 * lags[-1],
        window_close_s_median=statistics.median(delays) if delays else None,
        window_close_s_max=max(delays) if delays else None,
        stored_alert_events=stored_alert_events,
        consumed_alert_events=len(alerts),
        seconds=seconds,
    )


def _stored_alert_events(dsn: str) -> int:
    client = make_client(dsn, create_database=False)
    try:
        return int(client.query("SELECT uniqExact(id) FROM alerts").result_rows[0][0])
    finally:
        client.close()


def run_live(
    catalog_path: Path,
    config: LiveConfig,
    services: LiveServices,
    work: Path,
    progress: Progress = no_progress,
) -> LiveResult:
    """Start the collector and the worker on ``services``, run the scenario in real time, stop
    them; ``work`` holds their logs (``work/logs``)."""
    started = time.perf_counter()
    catalog = load_catalog(catalog_path)
    plan = live_plan(services, catalog_path, config, work)
    supervisor = Supervisor(plan, work / "logs", progress)
    try:
        supervisor.start_all()
        collector = f"http://127.0.0.1:{plan.ports.collector}"
        run = LiveRun(catalog, config, services, collector, supervisor, progress)
        timeline = asyncio.run(run.run())
    finally:
        supervisor.stop_all()
    stored = _stored_alert_events(services.clickhouse_dsn)
    return judge_live(config, run.watch, timeline, run.stats, stored, time.perf_counter() - started)
