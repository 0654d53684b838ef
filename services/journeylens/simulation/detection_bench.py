"""How good is detection? Steady noisy traffic, then each scenario injected, on a fake clock.

The real processing code runs: the traffic model's events are encoded as the topics carry them
(orjson bytes in :class:`~journeylens.processor.pipeline.Record` s) and fed minute by minute to
:class:`~journeylens.processor.pipeline.ExperiencePipeline` (windows, aggregates, baselines,
anomalies, alert policy, business impact) with a :class:`~journeylens.domain.clock.FakeClock`
one step behind event time, as a worker would be.

1. A steady run of ``warmup_hours`` (≥ 24 h) of noisy traffic teaches the baselines; every
   incident it opens is a false alert.
2. Its end state (the pipeline's serialised per-journey state, and a fork of the traffic model)
   is the starting point of one fresh run per scenario: the fault starts at the first window,
   lasts ``fault_minutes``, then ``recovery_minutes`` of healthy traffic follow.

Per scenario: time to detect (windows from the fault's start to the first firing alert of
the scenario's journey, target ≤ 3), the classification of that alert (scope, suspected step,
dependency and segment against the scenario's expectation), the incidents it opened (target
exactly 1, never reopened: no flapping), and whether it resolved after the fault ended.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from journeylens.contracts.catalog import Catalog
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.domain.clock import FakeClock
from journeylens.processor.pipeline import (
    RUM,
    SYNTHETIC,
    ExperiencePipeline,
    JourneyState,
    PipelineConfig,
    Record,
)
from journeylens.simulation.scenarios import SCENARIOS, Scenario
from journeylens.simulation.traffic import TrafficModel, TrafficProfile

if TYPE_CHECKING:
    from journeylens.simulation.live_bench import LiveResult

FIRING = "io.journeylens.alert.firing"
RESOLVED = "io.journeylens.alert.resolved"
TARGET_DETECT_WINDOWS = 3
TARGET_ALERTS_PER_INCIDENT = 1
TARGET_FALSE_ALERTS_PER_DAY = 0.0

Progress = Callable[[str, int, int], None]
"""(phase, done, total) in simulated minutes."""


@dataclass(frozen=True)
class BenchConfig:
    warmup_hours: float = 24.0
    fault_minutes: int = 20
    recovery_minutes: int = 15
    seed: int = 7
    start: datetime = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
    """A Monday afternoon: the faults start a day later, at the same busy hour."""
    profile: TrafficProfile = field(default_factory=TrafficProfile)
    window_s: int = 60
    scenarios: tuple[str, ...] = tuple(s.name for s in SCENARIOS)


@dataclass
class VolumeStats:
    """RUM volume seen per step-window (sampled views of the ``all`` rows)."""

    windows: int = 0
    events: int = 0
    probe_runs: int = 0
    min_views: dict[str, int] = field(default_factory=dict)
    total_views: Counter[str] = field(default_factory=Counter)
    step_windows: Counter[str] = field(default_factory=Counter)

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            if row["segment_dimension"] != "all" or row["step"] == JOURNEY_LEVEL:
                continue
            views = int(row["rum"]["sampled_views"])
            if views == 0:
                continue
            key = f"{row['journey']}/{row['step']}"
            self.min_views[key] = min(self.min_views.get(key, views), views)
            self.total_views[key] += views
            self.step_windows[key] += 1

    def mean_views(self) -> dict[str, float]:
        return {
            k: round(self.total_views[k] / self.step_windows[k], 1)
            for k in sorted(self.total_views)
        }


class Simulation:
    """The traffic model feeding the experience pipeline, one minute (one window) at a time."""

    def __init__(
        self,
        catalog: Catalog,
        model: TrafficModel,
        start_s: float,
        *,
        states: dict[str, bytes] | None = None,
        offsets: dict[str, int] | None = None,
        window_s: int = 60,
        journeys: frozenset[str] | None = None,
    ) -> None:
        self.model = model
        self.journeys = journeys
        """Process only these journeys (a worker's partitions); offsets still count every
        record, so partial runs share one numbering and their states can be combined."""
        self.now = start_s
        self.clock = FakeClock(start_s)
        self.config = PipelineConfig(window_s=window_s)
        self.pipeline = ExperiencePipeline(catalog, self.config, self.clock)
        self.states: dict[str, JourneyState] = {
            journey: self.pipeline.decode_state(blob) for journey, blob in (states or {}).items()
        }
        self.offsets = dict(offsets or {RUM: -1, SYNTHETIC: -1})
        self.alerts: list[dict[str, Any]] = []
        self.volume = VolumeStats()

    def run_minute(self) -> list[dict[str, Any]]:
        """Generate and process one minute of traffic; returns the alert events it raised."""
        start = self.now
        rum, probes = self.model.minute(start)
        records = [self._record(RUM, event) for event in rum]
        records += [self._record(SYNTHETIC, result) for result in probes]
        if self.journeys is not None:
            keep = self.journeys
            records = [
                r for r, m in zip(records, [*rum, *probes], strict=True) if m.get("journey") in keep
            ]
        self.now = start + 60.0
        self.clock.set(self.now + 2.0)  # the worker processes the batch just after the minute
        out = self.pipeline.process(records, self.states)
        for journey, (_, state) in out.states.items():
            self.states[journey] = state
        self.volume.windows += 1
        self.volume.events += len(rum)
        self.volume.probe_runs += len(probes)
        self.volume.add(out.aggregates)
        self.alerts.extend(out.alerts)
        return out.alerts

    def _record(self, stream: str, message: dict[str, Any]) -> Record:
        offset = self.offsets[stream] + 1
        self.offsets[stream] = offset
        return Record(stream, 0, offset, orjson.dumps(message))

    def snapshot(self) -> dict[str, bytes]:
        """The pipeline's serialised state per journey (what the worker's table holds)."""
        return {journey: state.encode() for journey, state in self.states.items()}


# ---------------------------------------------------------------------------------- results


@dataclass
class Classification:
    scope: str | None = None
    step: str | None = None
    dependency: str | None = None
    segment: str | None = None


@dataclass
class ScenarioResult:
    name: str
    title: str
    journey: str
    expected: Classification
    detected: bool = False
    detect_windows: int | None = None
    got: Classification = field(default_factory=Classification)
    scope_ok: bool = False
    step_ok: bool = False
    dependency_ok: bool = False
    segment_ok: bool = False
    incidents: int = 0
    notifications: int = 0
    """Firing events of the journey: the first one plus significant updates."""
    reopened: int = 0
    resolved: bool = False
    resolve_windows: int | None = None
    """Windows from the fault's end to the resolve event."""
    other_journeys: dict[str, str] = field(default_factory=dict)
    """Other journeys that opened an incident during the run → their scope."""
    min_views: dict[str, int] = field(default_factory=dict)
    sessions_affected: int | None = None
    revenue_at_risk: float | None = None

    @property
    def classification_ok(self) -> bool:
        return self.scope_ok and self.step_ok and self.dependency_ok and self.segment_ok

    @property
    def detect_ok(self) -> bool:
        return self.detect_windows is not None and self.detect_windows <= TARGET_DETECT_WINDOWS

    @property
    def alerts_ok(self) -> bool:
        return self.incidents == TARGET_ALERTS_PER_INCIDENT and self.reopened == 0

    @property
    def passed(self) -> bool:
        return self.detect_ok and self.classification_ok and self.alerts_ok

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("expected", "got")},
            "expected": asdict(self.expected),
            "got": asdict(self.got),
            "detect_ok": self.detect_ok,
            "classification_ok": self.classification_ok,
            "alerts_ok": self.alerts_ok,
            "passed": self.passed,
        }


@dataclass
class SteadyResult:
    hours: float
    incidents: int
    alerts: list[str]
    """``journey: title`` of every incident opened by steady traffic."""
    volume: VolumeStats

    @property
    def per_day(self) -> float:
        return self.incidents / (self.hours / 24.0) if self.hours else 0.0

    @property
    def passed(self) -> bool:
        return self.per_day <= TARGET_FALSE_ALERTS_PER_DAY


@dataclass
class BenchReport:
    config: BenchConfig
    steady: SteadyResult | None
    """None when only the live run ran."""
    scenarios: list[ScenarioResult]
    seconds: float
    live: LiveResult | None = None
    """The scenario run in real time through Kafka (simulation/live_bench.py), if it ran."""

    @property
    def passed(self) -> bool:
        return (
            (self.steady is None or self.steady.passed)
            and all(s.passed for s in self.scenarios)
            and (self.live is None or self.live.passed)
        )

    def to_json(self) -> dict[str, Any]:
        """The fake-clock runs at the top level (``steady`` is null when they did not run),
        the live run under ``live`` (null when it did not run)."""
        profile = self.config.profile
        steady = self.steady
        return {
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "config": {
                "warmup_hours": self.config.warmup_hours,
                "fault_minutes": self.config.fault_minutes,
                "recovery_minutes": self.config.recovery_minutes,
                "window_s": self.config.window_s,
                "seed": self.config.seed,
                "start": self.config.start.isoformat(),
                "peak_sessions_per_minute": profile.peak_sessions_per_minute,
                "trough_ratio": profile.trough_ratio,
                "probe_locations": list(profile.probe_locations),
            },
            "targets": {
                "detect_windows_max": TARGET_DETECT_WINDOWS,
                "alerts_per_incident": TARGET_ALERTS_PER_INCIDENT,
                "false_alerts_per_day_max": TARGET_FALSE_ALERTS_PER_DAY,
            },
            "steady": None
            if steady is None
            else {
                "hours": steady.hours,
                "incidents": steady.incidents,
                "false_alerts_per_day": round(steady.per_day, 3),
                "alerts": steady.alerts,
                "passed": steady.passed,
                "rum_events": steady.volume.events,
                "probe_runs": steady.volume.probe_runs,
                "min_views_per_step_window": dict(sorted(steady.volume.min_views.items())),
                "mean_views_per_step_window": steady.volume.mean_views(),
            },
            "scenarios": [s.to_json() for s in self.scenarios],
            "live": None if self.live is None else self.live.to_json(),
        }


# ------------------------------------------------------------------------------------ runs


def run_steady(
    catalog: Catalog,
    config: BenchConfig,
    progress: Progress | None = None,
    journeys: frozenset[str] | None = None,
) -> tuple[Simulation, SteadyResult]:
    start = config.start.timestamp()
    model = TrafficModel(catalog, config.profile, seed=config.seed)
    sim = Simulation(catalog, model, start, window_s=config.window_s, journeys=journeys)
    minutes = round(config.warmup_hours * 60)
    for i in range(minutes):
        sim.run_minute()
        if progress is not None and (i % 30 == 29 or i == minutes - 1):
            progress("steady traffic", i + 1, minutes)
    titles = [f"{a['data']['journey']}: {a['data']['title']}" for a in firsts(sim.alerts)]
    return sim, SteadyResult(config.warmup_hours, len(titles), titles, sim.volume)


def run_scenario(
    catalog: Catalog,
    warm: Simulation,
    scenario: Scenario,
    config: BenchConfig,
    progress: Progress | None = None,
) -> ScenarioResult:
    """A fresh run from the warm state with the scenario's fault from its first window."""
    fault_start = warm.now
    fault_end = fault_start + config.fault_minutes * 60.0
    model = warm.model.fork([scenario.fault(fault_start, fault_end)])
    sim = Simulation(
        catalog,
        model,
        fault_start,
        states=warm.snapshot(),
        offsets=warm.offsets,
        window_s=config.window_s,
    )
    total = config.fault_minutes + config.recovery_minutes
    # windows still open in the warm state close during the first minutes: not this fault's
    for i in range(total):
        sim.run_minute()
        if progress is not None and (i % 5 == 4 or i == total - 1):
            progress(scenario.name, i + 1, total)
    return judge(scenario, sim, fault_start, fault_end, config.window_s)


def judge(
    scenario: Scenario,
    sim: Simulation,
    fault_start: float,
    fault_end: float,
    window_s: int,
) -> ScenarioResult:
    return judge_alerts(
        scenario,
        sim.alerts,
        fault_start,
        fault_end,
        window_s,
        dict(sorted(sim.volume.min_views.items())),
    )


def judge_alerts(
    scenario: Scenario,
    alerts: Sequence[dict[str, Any]],
    fault_start: float,
    fault_end: float,
    window_s: int,
    min_views: dict[str, int],
) -> ScenarioResult:
    """Judge the alert events (experience.alerts.v1 dicts, in order) raised from the fault's
    start on, against the scenario's expectation; times are the events' (window ends)."""
    exp = scenario.expected
    result = ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        journey=exp.journey,
        expected=Classification(exp.scope, exp.step, exp.dependency, exp.segment),
        min_views=min_views,
    )
    mine = [a for a in alerts if a["data"]["journey"] == exp.journey]
    firing = [a for a in mine if a["type"] == FIRING]
    for first in firsts(alerts):
        journey = first["data"]["journey"]
        if journey != exp.journey:
            result.other_journeys[journey] = first["data"]["scope"]
    result.incidents = len({a["data"]["fingerprint"] for a in firing})
    result.notifications = len(firing)
    result.reopened = _reopens(mine)
    if firing:
        first = firing[0]
        data = first["data"]
        evidence = data["evidence"]
        at = epoch(first["time"])
        result.detected = True
        result.detect_windows = max(1, round((at - fault_start) / window_s))
        segment = None
        if evidence.get("segment_dimension"):
            segment = f"{evidence['segment_dimension']}={evidence['segment_value']}"
        result.got = Classification(
            data["scope"],
            evidence.get("suspected_step"),
            evidence.get("suspected_dependency"),
            segment,
        )
        impact = data["impact"]
        last = firing[-1]["data"]["impact"]
        result.sessions_affected = int(last.get("sessions_affected", impact["sessions_affected"]))
        result.revenue_at_risk = float(last.get("revenue_at_risk", 0.0))
    got, want = result.got, result.expected
    result.scope_ok = got.scope == want.scope
    result.step_ok = got.step == want.step
    result.dependency_ok = got.dependency == want.dependency
    result.segment_ok = got.segment == want.segment
    resolves = [a for a in mine if a["type"] == RESOLVED and epoch(a["time"]) > fault_end]
    if resolves:
        result.resolved = True
        result.resolve_windows = round((epoch(resolves[0]["time"]) - fault_end) / window_s)
    return result


def firsts(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first firing event of every incident (fingerprint)."""
    seen: set[str] = set()
    out = []
    for a in alerts:
        fingerprint = a["data"]["fingerprint"]
        if a["type"] == FIRING and fingerprint not in seen:
            seen.add(fingerprint)
            out.append(a)
    return out


def _reopens(alerts: Sequence[dict[str, Any]]) -> int:
    """Firing events of an incident after it had resolved (flapping)."""
    resolved: set[str] = set()
    count = 0
    for a in alerts:
        fingerprint = a["data"]["fingerprint"]
        if a["type"] == RESOLVED:
            resolved.add(fingerprint)
        elif fingerprint in resolved:
            count += 1
            resolved.discard(fingerprint)
    return count


def epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_bench(
    catalog: Catalog, config: BenchConfig, progress: Progress | None = None, workers: int = 1
) -> BenchReport:
    """The whole benchmark; ``workers`` > 1 splits the journeys over processes for the steady
    run (as the worker's Kafka partitions would) and the scenarios over the same processes."""
    started = time.perf_counter()
    if workers <= 1:
        warm, steady = run_steady(catalog, config, progress)
        results = [
            run_scenario(catalog, warm, SCENARIOS_BY_NAME[name], config, progress)
            for name in config.scenarios
        ]
    else:
        warm, steady = _steady_in_parallel(catalog, config, progress, workers)
        results = _scenarios_in_parallel(catalog, warm, config, progress, workers)
    return BenchReport(config, steady, results, time.perf_counter() - started)


def partitions(catalog: Catalog, workers: int) -> list[frozenset[str]]:
    """Journeys spread over ``workers`` by their processing cost (steps with RUM weigh most)."""
    cost = {j.id: 1 + 4 * sum(1 for s in j.steps if s.rum is not None) for j in catalog.journeys}
    parts: list[list[str]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for journey in sorted(cost, key=lambda j: (-cost[j], j)):
        i = loads.index(min(loads))
        parts[i].append(journey)
        loads[i] += cost[journey]
    return [frozenset(p) for p in parts if p]


def _steady_part(
    catalog: Catalog, config: BenchConfig, journeys: frozenset[str], index: int, queue: Any
) -> None:
    def progress(phase: str, done: int, total: int) -> None:
        if index == 0:
            queue.put(("progress", phase, done, total))

    sim, _ = run_steady(catalog, config, progress, journeys)
    queue.put(
        (
            "steady",
            index,
            sim.snapshot(),
            sim.offsets,
            sim.alerts,
            sim.volume,
            sim.model if index == 0 else None,
            sim.now,
        )
    )


def _steady_in_parallel(
    catalog: Catalog, config: BenchConfig, progress: Progress | None, workers: int
) -> tuple[Simulation, SteadyResult]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    parts = partitions(catalog, workers)
    procs = [
        context.Process(target=_steady_part, args=(catalog, config, part, i, queue))
        for i, part in enumerate(parts)
    ]
    for proc in procs:
        proc.start()
    done: dict[int, tuple[Any, ...]] = {}
    while len(done) < len(procs):
        message = queue.get()
        if message[0] == "progress":
            if progress is not None:
                progress(message[1], message[2], message[3])
        else:
            done[message[1]] = message[2:]
    for proc in procs:
        proc.join()
    states: dict[str, bytes] = {}
    alerts: list[dict[str, Any]] = []
    volume = VolumeStats()
    for _, (snapshot, _offsets, part_alerts, part_volume, _model, _now) in sorted(done.items()):
        states.update(snapshot)
        alerts.extend(part_alerts)
        volume.windows = max(volume.windows, part_volume.windows)
        volume.events, volume.probe_runs = part_volume.events, part_volume.probe_runs
        volume.min_views.update(part_volume.min_views)
        volume.total_views.update(part_volume.total_views)
        volume.step_windows.update(part_volume.step_windows)
    _, offsets, _, _, model, now = done[0]
    warm = Simulation(catalog, model, now, states=states, offsets=offsets, window_s=config.window_s)
    warm.alerts = sorted(alerts, key=lambda a: (a["time"], a["data"]["journey"]))
    warm.volume = volume
    titles = [f"{a['data']['journey']}: {a['data']['title']}" for a in firsts(warm.alerts)]
    return warm, SteadyResult(config.warmup_hours, len(titles), titles, volume)


def _scenario_part(
    catalog: Catalog, warm: Simulation, config: BenchConfig, names: list[str], queue: Any
) -> None:
    def progress(phase: str, done: int, total: int) -> None:
        queue.put(("progress", phase, done, total))

    for name in names:
        result = run_scenario(catalog, warm, SCENARIOS_BY_NAME[name], config, progress)
        queue.put(("result", name, result))


def _scenarios_in_parallel(
    catalog: Catalog,
    warm: Simulation,
    config: BenchConfig,
    progress: Progress | None,
    workers: int,
) -> list[ScenarioResult]:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    names = list(config.scenarios)
    groups = [names[i::workers] for i in range(workers) if names[i::workers]]
    procs = [
        context.Process(target=_scenario_part, args=(catalog, warm, config, group, queue))
        for group in groups
    ]
    for proc in procs:
        proc.start()
    results: dict[str, ScenarioResult] = {}
    while len(results) < len(names):
        message = queue.get()
        if message[0] == "progress":
            if progress is not None:
                progress(message[1], message[2], message[3])
        else:
            results[message[1]] = message[2]
    for proc in procs:
        proc.join()
    return [results[name] for name in names]


SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


# ------------------------------------------------------------------------------------ table


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render_table(report: BenchReport) -> str:
    """The human-readable report: one row per scenario (the live run's last, labelled
    ``live:``), then the live run's wall-clock figures and the steady run."""
    lines = []
    cfg = report.config
    steady, live = report.steady, report.live
    if steady is not None:
        lines.append(
            f"Detection benchmark: {cfg.warmup_hours:g} h steady warm-up, then each scenario for "
            f"{cfg.fault_minutes} min + {cfg.recovery_minutes} min recovery "
            f"({cfg.window_s} s windows, seed {cfg.seed}, peak "
            f"{cfg.profile.peak_sessions_per_minute:g} sessions/min, "
            f"{len(cfg.profile.probe_locations)} probe locations)"
        )
    if live is not None:
        lines.append(_live_header(live))
    header = (
        f"{'scenario':<20} {'detect (≤3 win)':<16} {'scope':<24} {'step':<26} "
        f"{'dependency':<32} {'segment':<26} {'incidents (=1)':<15} {'resolved':<9} result"
    )
    lines.append(header)
    lines.append("-" * len(header))
    rows = [(s.name, s) for s in report.scenarios]
    if live is not None:
        rows.append((f"live:{live.scenario.name}", live.scenario))
    for label, s in rows:
        lines.append(_row(label, s))
    for label, s in rows:
        if s.other_journeys:
            also = ", ".join(f"{j} ({scope})" for j, scope in sorted(s.other_journeys.items()))
            lines.append(f"  {label}: same fault also alerted on {also}")
    if live is not None:
        lines.extend(_live_lines(live))
    if steady is not None:
        lines.append("")
        lines.append(
            f"steady traffic: {steady.hours:g} h, {steady.volume.events} RUM events, "
            f"{steady.volume.probe_runs} probe runs, {steady.incidents} incident(s) → "
            f"{steady.per_day:.2f} false alerts/day (target {TARGET_FALSE_ALERTS_PER_DAY:g}) "
            f"{_mark(steady.passed)}"
        )
        for title in steady.alerts:
            lines.append(f"  false alert: {title}")
        views = steady.volume.mean_views()
        lines.append(
            "RUM views per step-window (mean / min over the day): "
            + ", ".join(f"{k} {v:g}/{steady.volume.min_views[k]}" for k, v in views.items())
        )
    lines.append(f"overall: {_mark(report.passed)} in {report.seconds:.0f} s")
    return "\n".join(lines)


def _row(label: str, s: ScenarioResult) -> str:
    detect = f"{s.detect_windows} {_mark(s.detect_ok)}" if s.detected else "missed FAIL"
    return (
        f"{label:<20} {detect:<16} "
        f"{_cell(s.got.scope, s.expected.scope, s.scope_ok):<24} "
        f"{_cell(s.got.step, s.expected.step, s.step_ok):<26} "
        f"{_cell(s.got.dependency, s.expected.dependency, s.dependency_ok):<32} "
        f"{_cell(s.got.segment, s.expected.segment, s.segment_ok):<26} "
        f"{_incidents(s):<15} "
        f"{(f'+{s.resolve_windows} win' if s.resolved else 'no'):<9} "
        f"{_mark(s.passed)}"
    )


def _live_header(live: LiveResult) -> str:
    c = live.config
    return (
        f"Live run (real time: throw-away Kafka + ClickHouse, the collector and worker "
        f"processes): {c.scenario}, {c.window_s} s windows (grace {c.grace_s} s), "
        f"{c.warmup_windows} warm-up windows, then {c.fault_windows} fault + "
        f"{c.recovery_windows} recovery windows; {c.sessions_per_minute:g} sessions/min, "
        f"probes every {c.window_s} s from {len(c.profile.probe_locations)} locations; "
        f"detect = event-time windows, as above"
    )


def _live_lines(live: LiveResult) -> list[str]:
    c = live.config
    label = f"live:{live.scenario.name}"
    if live.detect_s is None:
        wall = "no alert of the journey consumed"
    else:
        wall = (
            f"first alert consumed {live.detect_s:.1f} s after the injection "
            f"({live.detect_wall_windows:.2f} windows), "
            f"{live.alert_after_window_s:.1f} s after its window ended"
        )
    closes = "-"
    if live.window_close_s_median is not None and live.window_close_s_max is not None:
        closes = f"median {live.window_close_s_median:.1f} s, max {live.window_close_s_max:.1f} s"
    lines = [
        f"  {label} wall clock: {wall}; windows closed {closes} after their end",
        f"  {label} warm-up: {c.warmup_windows} windows ({c.warmup_windows * c.window_s} s; "
        f"the first {c.warmup_windows - c.armed_windows} teach the baselines, "
        f"{c.armed_windows} judged against them): {len(live.false_alerts)} false alert(s) "
        f"{_mark(live.warmup_passed)}",
    ]
    lines += [f"    false alert: {title}" for title in live.false_alerts]
    lines.append(
        f"  {label} traffic: {live.beacon_requests} beacon requests "
        f"({live.rejected_requests} not accepted), {live.probe_results} probe results; "
        f"send lag p99 {live.send_lag_ms_p99:.0f} ms, max {live.send_lag_ms_max:.0f} ms; "
        f"alert events: {live.consumed_alert_events} consumed from Kafka, "
        f"{live.stored_alert_events} stored in ClickHouse; {live.seconds:.0f} s in all"
    )
    return lines


def _cell(got: str | None, want: str | None, ok: bool) -> str:
    text = got or "-"
    return f"{text} ✓" if ok else f"{text} ✗ (want {want or '-'})"


def _incidents(s: ScenarioResult) -> str:
    text = f"{s.incidents}"
    if s.reopened:
        text += f" ({s.reopened} reopen)"
    return f"{text} {_mark(s.alerts_ok)}"
