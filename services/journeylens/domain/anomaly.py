"""Anomalies: a metric beyond BOTH its catalog threshold and its baseline band, N of M windows.

Input is one closed window of one journey: every ``experience.aggregates.v1`` row of it (all
steps, the ``_journey`` row, the segment breakdowns). Baselines and the N-of-M history are kept
per step × metric on the whole-population rows (``segment_dimension == "all"``); segment rows
and per-dependency stats only explain a RUM-side anomaly.

Anti-noise:
- RUM metrics need ``min_sampled_views`` received views (and ``min_metric_samples`` values for a
  quantile) in the window, else the window counts as not violating; the error rate also needs
  ``min_error_views`` views with an error, and a count improbable (``error_count_alpha``) under
  a Poisson law at the baseline rate (a few errors are noise, not an incident);
- synthetic metrics need ``min_failing_locations`` failing locations, ``min_consecutive_windows``
  consecutive failing windows and ``min_failure_duration_s`` of failure before they alarm;
- a window counts as violating only beyond the threshold AND outside the band; while a baseline
  warms up (``warmup_windows``) it learns every value and nothing alarms, unless
  ``alarm_during_warmup`` lets the threshold alone decide (a journey broken from the very first
  window is then still caught; the SLO burn rate catches it either way when the journey has one).

Scope of an anomaly: ``confirmed`` when the other side (RUM vs synthetic) of the same step, or of
the whole journey, is violating in the same window; otherwise ``rum_only`` or ``synthetic_only``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from statistics import NormalDist
from typing import Any, Final, Literal

from journeylens.contracts.catalog import Journey, Thresholds
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.experience_aggregates_v1 import (
    DependencyStats,
    JourneyAggregate,
    Quantiles,
    Scope,
    SegmentDimension,
)
from journeylens.contracts.experience_anomalies_v1 import Anomaly
from journeylens.domain.baseline import Band, Baseline, BaselineParams, Direction, EwStat

Side = Literal["rum", "synthetic"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    side: Side
    direction: Direction
    min_relative_width: float
    min_absolute_width: float
    latency: bool = False


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("rum.lcp_ms.p75", "rum", "above", 0.2, 100.0, latency=True),
    MetricSpec("rum.inp_ms.p75", "rum", "above", 0.2, 25.0, latency=True),
    MetricSpec("rum.cls.p75", "rum", "above", 0.2, 0.02),
    MetricSpec("rum.ttfb_ms.p75", "rum", "above", 0.2, 50.0, latency=True),
    MetricSpec("rum.error_rate", "rum", "above", 0.25, 0.01),
    MetricSpec("rum.apdex", "rum", "below", 0.0, 0.05),
    MetricSpec("synthetic.availability", "synthetic", "below", 0.0, 0.02),
    MetricSpec("synthetic.duration_ms.p95", "synthetic", "above", 0.25, 100.0, latency=True),
)
METRICS_BY_NAME = {m.name: m for m in METRICS}


@dataclass(frozen=True)
class AnomalyParams:
    violating_windows: int = 3
    of_windows: int = 5
    min_sampled_views: int = 20
    min_metric_samples: int = 10
    min_error_views: int = 5
    """rum.error_rate needs this many views with an error: small counts are Poisson noise."""
    error_count_alpha: float = 1e-3
    """The error count must also be this improbable under the baseline rate (Poisson tail):
    the band's upper edge is at least that count / views. Normal-noise bands are too narrow
    for a few errors in a few hundred views."""
    min_apdex: float = 0.7
    """The catalog's Thresholds has no Apdex floor yet; 0.7 is Apdex 'fair'."""
    min_runs: int = 1
    min_failing_locations: int = 1
    min_consecutive_windows: int = 2
    min_failure_duration_s: float = 0.0
    min_segment_views: int = 20
    segment_concentration: float = 0.3
    """A segment explains an anomaly only when the other values of its dimension deviate
    (views-weighted) by at most this share of its own deviation: a fault spread over the whole
    population is not blamed on whichever segment noise made a little worse."""
    segment_warmup_windows: int = 10
    """Windows a segment's own level needs before deviations are measured from it (until
    then, from the step's baseline)."""
    min_sibling_views: int = 8
    """Views a segment needs to count as a comparison for another segment of its dimension."""
    dependency_failure_rate: float = 0.05
    dependency_slow_ms: float = 1000.0
    dependency_slow_factor: float = 3.0
    """A dependency is also slow at this many times its usual p75 for the step (and at least
    ``dependency_slow_delta_ms`` more): a slowdown of a segment's users (one country's CDN
    PoP) moves the population's p75 well before the absolute floor."""
    dependency_slow_delta_ms: float = 200.0
    alarm_during_warmup: bool = False
    """While a baseline warms up (no band yet) the threshold alone may decide (True), or nothing
    alarms (False, the default: BOTH threshold and band, as specified)."""
    baseline: BaselineParams = field(default_factory=BaselineParams)

    def __post_init__(self) -> None:
        if not 1 <= self.violating_windows <= self.of_windows:
            raise ValueError("need 1 <= violating_windows <= of_windows")


@dataclass(frozen=True)
class Finding:
    """An emitted anomaly plus what the alert policy needs beyond the contract."""

    anomaly: dict[str, Any]
    side: Side
    step: str
    metric: str
    value: float
    threshold: float | None
    baseline: float | None
    scope: Scope
    window_start: datetime
    segment_dimension: str | None = None
    segment_value: str | None = None
    dependency: str | None = None
    failing_locations: tuple[str, ...] = ()
    failed_assertions: tuple[str, ...] = ()
    violating_steps: tuple[str, ...] = ()
    """For a journey-level finding: the steps violating on its side in the same window (not
    yet N of M themselves), which point at where the journey breaks."""


@dataclass
class WindowReport:
    """What one window of one journey showed."""

    journey: str
    window_start: datetime
    window_end: datetime
    findings: list[Finding] = field(default_factory=list)
    rum_violating: set[str] = field(default_factory=set)
    """Steps whose RUM side violated in this window (before N of M)."""
    synthetic_violating: set[str] = field(default_factory=set)


def _p(q: Quantiles, which: str, min_samples: int) -> float | None:
    if q.count < min_samples:
        return None
    value: float | None = getattr(q, which)
    return value


_RUM_P75: Final = {
    "rum.lcp_ms.p75": "lcp_ms",
    "rum.inp_ms.p75": "inp_ms",
    "rum.cls.p75": "cls",
    "rum.ttfb_ms.p75": "ttfb_ms",
}
"""RUM metric → the ``RumStats`` quantiles whose p75 it is."""


def metric_value(row: JourneyAggregate, spec: MetricSpec, params: AnomalyParams) -> float | None:
    """The metric of one row, or None when the window has too little volume to judge."""
    rum, syn = row.rum, row.synthetic
    if spec.side == "rum":
        if rum.sampled_views < params.min_sampled_views:
            return None
        quantiles = _RUM_P75.get(spec.name)
        if quantiles is not None:
            return _p(getattr(rum, quantiles), "p75", params.min_metric_samples)
        if spec.name == "rum.error_rate":
            return rum.error_rate
        if spec.name == "rum.apdex":
            return rum.apdex
        raise KeyError(spec.name)
    if syn.runs < params.min_runs:
        return None
    if spec.name == "synthetic.availability":
        if syn.availability is not None:
            return syn.availability
        return (syn.runs - syn.failures) / syn.runs
    return syn.duration_ms.p95


def threshold_for(thresholds: Thresholds, spec: MetricSpec, params: AnomalyParams) -> float | None:
    by_metric: dict[str, float | None] = {
        "rum.lcp_ms.p75": thresholds.lcp_p75_ms,
        "rum.inp_ms.p75": thresholds.inp_p75_ms,
        "rum.cls.p75": thresholds.cls_p75,
        "rum.ttfb_ms.p75": thresholds.ttfb_p75_ms,
        "rum.error_rate": thresholds.error_rate,
        "rum.apdex": params.min_apdex,
        "synthetic.availability": thresholds.min_availability,
        "synthetic.duration_ms.p95": thresholds.duration_p95_ms,
    }
    return by_metric[spec.name]


def beyond(value: float, limit: float, direction: Direction) -> bool:
    return value > limit if direction == "above" else value < limit


def failing_locations(row: JourneyAggregate, spec: MetricSpec, threshold: float) -> list[str]:
    """Probe locations failing this synthetic metric (sorted)."""
    syn = row.synthetic
    if spec.name == "synthetic.availability":
        bad = [
            loc.location
            for loc in syn.locations
            if loc.failures > 0 and (loc.availability is None or loc.availability < threshold)
        ]
        fallback = syn.failures > 0
    else:
        bad = [
            loc.location
            for loc in syn.locations
            if loc.duration_ms_p95 is not None and loc.duration_ms_p95 > threshold
        ]
        fallback = True
    if not syn.locations and fallback:
        return ["(unknown)"]
    return sorted(bad)


@dataclass
class MetricTrack:
    """Baseline and N-of-M history of one step × metric."""

    baseline: Baseline
    history: list[bool] = field(default_factory=list)
    streak: int = 0
    streak_start: str | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.to_state(),
            "history": [int(v) for v in self.history],
            "streak": self.streak,
            "streak_start": self.streak_start,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], params: BaselineParams) -> MetricTrack:
        return cls(
            baseline=Baseline.from_state(state["baseline"], params),
            history=[bool(v) for v in state.get("history", [])],
            streak=int(state.get("streak", 0)),
            streak_start=state.get("streak_start"),
        )


@dataclass(frozen=True)
class _Judged:
    spec: MetricSpec
    row: JourneyAggregate
    value: float
    threshold: float
    band: Band | None
    violating: bool
    locations: tuple[str, ...]


def anomaly_id(journey: str, step: str, metric: str, window_start: datetime) -> str:
    return f"{journey}|{step}|{metric}|{window_start.isoformat()}"


class AnomalyDetector:
    """Per-journey anomaly detection; feed it one window's rows at a time, in window order."""

    def __init__(self, journey: Journey, params: AnomalyParams | None = None) -> None:
        self.journey = journey
        self.params = params or AnomalyParams()
        self.tracks: dict[tuple[str, str], MetricTrack] = {}
        self.segment_levels: dict[str, EwStat] = {}
        """``step\tmetric\tdimension\tvalue`` → the segment's usual level (EW mean)."""

    # -- state ---------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            f"{step}\t{metric}": track.to_state()
            for (step, metric), track in sorted(self.tracks.items())
        }
        state[SEGMENTS_KEY] = {k: v.to_state() for k, v in sorted(self.segment_levels.items())}
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.tracks = {}
        self.segment_levels = {
            k: EwStat.from_state(v) for k, v in (state.get(SEGMENTS_KEY) or {}).items()
        }
        for key, raw in state.items():
            if key == SEGMENTS_KEY:
                continue
            step, metric = key.split("\t", 1)
            self.tracks[(step, metric)] = MetricTrack.from_state(raw, self._baseline_params(metric))

    def _baseline_params(self, metric: str) -> BaselineParams:
        spec = METRICS_BY_NAME.get(metric)
        base = self.params.baseline
        if spec is None:
            return base
        return replace(
            base,
            min_relative_width=spec.min_relative_width,
            min_absolute_width=max(base.min_absolute_width, spec.min_absolute_width),
        )

    def _track(self, step: str, metric: str) -> MetricTrack:
        key = (step, metric)
        if key not in self.tracks:
            self.tracks[key] = MetricTrack(baseline=Baseline(self._baseline_params(metric)))
        return self.tracks[key]

    # -- detection -----------------------------------------------------------------------
    def observe(self, rows: Sequence[JourneyAggregate]) -> WindowReport:
        """Judge one closed window (all rows share journey and window)."""
        mains = sorted(
            (r for r in rows if r.segment_dimension == SegmentDimension.ALL), key=lambda r: r.step
        )
        segments = [r for r in rows if r.segment_dimension != SegmentDimension.ALL]
        first = rows[0]
        report = WindowReport(self.journey.id, first.window_start, first.window_end)
        judged: list[_Judged] = []
        for row in mains:
            judged.extend(self._judge_step(row, report))
        for j in judged:
            finding = self._emit(j, report, segments)
            if finding is not None:
                report.findings.append(finding)
        self._learn_segments(segments)
        self._learn_dependencies(mains, report)
        return report

    def _learn_dependencies(self, mains: Sequence[JourneyAggregate], report: WindowReport) -> None:
        """Learn each step's usual dependency p75 (not while the step's RUM side violates)."""
        alpha, clip = self.params.baseline.alpha, self.params.baseline.clip_sigmas
        for row in mains:
            if row.step in report.rum_violating:
                continue
            for dep in row.rum.dependencies:
                if dep.p75_ms is None:
                    continue
                key = dependency_key(row.step, dep.host)
                level = self.segment_levels.get(key)
                if level is None:
                    level = self.segment_levels[key] = EwStat()
                level.update(dep.p75_ms, alpha, clip)

    def _learn_segments(self, segments: Sequence[JourneyAggregate]) -> None:
        """Learn each segment's usual level, except for metrics of a violating step (an
        incident never teaches a segment its level)."""
        p = self.params
        alpha = p.baseline.alpha
        for row in segments:
            if row.rum.sampled_views < p.min_segment_views:
                continue
            for spec in METRICS:
                if spec.side != "rum":
                    continue
                track = self.tracks.get((row.step, spec.name))
                if track is None or (track.history and track.history[-1]):
                    continue
                value = metric_value(row, spec, p)
                if value is None:
                    continue
                key = segment_key(row, spec)
                level = self.segment_levels.get(key)
                if level is None:
                    level = self.segment_levels[key] = EwStat()
                level.update(value, alpha, p.baseline.clip_sigmas)

    def _judge_step(self, row: JourneyAggregate, report: WindowReport) -> Iterable[_Judged]:
        thresholds = self.journey.thresholds_for(row.step)
        out: list[_Judged] = []
        for spec in METRICS:
            threshold = threshold_for(thresholds, spec, self.params)
            if threshold is None:
                continue
            track = self._track(row.step, spec.name)
            value = metric_value(row, spec, self.params)
            band = track.baseline.band(row.window_start)
            if band is not None and spec.name == "rum.error_rate":
                band = _count_aware(band, row.rum.sampled_views, self.params.error_count_alpha)
            violating = False
            locations: tuple[str, ...] = ()
            if value is not None:
                out_of_band = (
                    band.violated_by(value, spec.direction)
                    if band is not None
                    else self.params.alarm_during_warmup
                )
                violating = beyond(value, threshold, spec.direction) and out_of_band
                if spec.name == "rum.error_rate":
                    violating &= row.rum.views_with_error >= self.params.min_error_views
                if violating and spec.side == "synthetic":
                    locations = tuple(failing_locations(row, spec, threshold))
                    violating = len(locations) >= self.params.min_failing_locations
                # warm-up learns everything: a metric chronically above its threshold becomes
                # the normal instead of alarming forever
                learn_slowly = band.violated_by(value, spec.direction) if band else False
                track.baseline.update(value, row.window_start, anomalous=learn_slowly)
            self._remember(track, violating, row)
            if violating:
                if spec.side == "rum":
                    report.rum_violating.add(row.step)
                else:
                    report.synthetic_violating.add(row.step)
                assert value is not None
                out.append(_Judged(spec, row, value, threshold, band, violating, locations))
        return out

    def _remember(self, track: MetricTrack, violating: bool, row: JourneyAggregate) -> None:
        track.history = [*track.history, violating][-self.params.of_windows :]
        if violating:
            if track.streak == 0:
                track.streak_start = row.window_start.isoformat()
            track.streak += 1
        else:
            track.streak, track.streak_start = 0, None

    def _emit(
        self, j: _Judged, report: WindowReport, segments: list[JourneyAggregate]
    ) -> Finding | None:
        p = self.params
        track = self.tracks[(j.row.step, j.spec.name)]
        count = sum(track.history)
        if count < p.violating_windows:
            return None
        if j.spec.side == "synthetic":
            if track.streak < p.min_consecutive_windows:
                return None
            started = datetime.fromisoformat(track.streak_start or j.row.window_start.isoformat())
            if (j.row.window_end - started).total_seconds() < p.min_failure_duration_s:
                return None
        scope = self._scope(j, report)
        seg_dim = seg_val = dependency = None
        if j.spec.side == "rum":
            seg = worst_segment(j, segments, p, self.segment_levels)
            if seg is not None:
                seg_dim, seg_val = seg
            usual = {
                d.host: level.mean
                for d in j.row.rum.dependencies
                if (level := self.segment_levels.get(dependency_key(j.row.step, d.host)))
                and level.n >= p.segment_warmup_windows
            }
            dependency = suspected_dependency(j.row.rum.dependencies, j.spec, p, usual)
        steps: tuple[str, ...] = ()
        if j.row.step == JOURNEY_LEVEL:
            same_side = report.rum_violating if j.spec.side == "rum" else report.synthetic_violating
            steps = tuple(sorted(same_side - {JOURNEY_LEVEL}))
        if j.spec.side == "synthetic":
            dependency = step_dependency(self.journey, steps[0] if len(steps) == 1 else j.row.step)
        failed = tuple(
            reason
            for reason, _ in sorted(
                j.row.synthetic.failed_assertions.items(), key=lambda kv: (-kv[1], kv[0])
            )
        )
        if j.spec.side == "rum":
            failed = ()
        anomaly = Anomaly(
            anomaly_id=anomaly_id(self.journey.id, j.row.step, j.spec.name, j.row.window_start),
            journey=self.journey.id,
            step=j.row.step,
            metric=j.spec.name,
            window_start=j.row.window_start,
            window_end=j.row.window_end,
            value=j.value,
            threshold=j.threshold,
            baseline=j.band.baseline if j.band else None,
            band_low=j.band.low if j.band else None,
            band_high=j.band.high if j.band else None,
            direction=j.spec.direction,
            violating_windows=count,
            of_windows=p.of_windows,
            scope=scope,
            segment_dimension=seg_dim,
            segment_value=seg_val,
            dependency=dependency,
            detected_at=j.row.window_end,
        )
        return Finding(
            anomaly=anomaly.model_dump(mode="json"),
            side=j.spec.side,
            step=j.row.step,
            metric=j.spec.name,
            value=j.value,
            threshold=j.threshold,
            baseline=j.band.baseline if j.band else None,
            scope=scope,
            window_start=j.row.window_start,
            segment_dimension=seg_dim,
            segment_value=seg_val,
            dependency=dependency,
            failing_locations=j.locations,
            failed_assertions=failed,
            violating_steps=steps,
        )

    @staticmethod
    def _scope(j: _Judged, report: WindowReport) -> Scope:
        other = report.synthetic_violating if j.spec.side == "rum" else report.rum_violating
        if j.row.step in other or JOURNEY_LEVEL in other:
            return Scope.CONFIRMED
        # the journey-level anomaly is confirmed by either side of any step
        if j.row.step == JOURNEY_LEVEL and other:
            return Scope.CONFIRMED
        return Scope.RUM_ONLY if j.spec.side == "rum" else Scope.SYNTHETIC_ONLY


def poisson_upper_count(mean: float, alpha: float) -> int:
    """Smallest k with P(X >= k) < alpha for X ~ Poisson(mean) (normal approximation > 50)."""
    if mean > 50:
        z = NormalDist().inv_cdf(1.0 - alpha)
        return math.ceil(mean + z * math.sqrt(mean) + 0.5)
    pmf = math.exp(-mean)
    cumulative = 0.0
    k = 0
    limit = int(mean + 20 * math.sqrt(mean) + 50)
    while k < limit and 1.0 - cumulative >= alpha:
        cumulative += pmf
        k += 1
        pmf *= mean / k
    return k


def _count_aware(band: Band, views: int, alpha: float) -> Band:
    """Widen a rate band's upper edge to the Poisson-improbable error count at this volume."""
    if views <= 0:
        return band
    expected = max(band.baseline, 0.0) * views
    high = (poisson_upper_count(max(expected, 1e-3), alpha) - 0.5) / views
    return replace(band, high=max(band.high, high)) if high > band.high else band


def _deviation(value: float, reference: float, direction: Direction, floor: float = 1e-9) -> float:
    """Relative deviation in the bad direction; ``floor`` bounds the scale (a segment whose
    usual error rate is ~0 is not infinitely worse with one error)."""
    scale = max(abs(reference), floor, 1e-9)
    delta = (value - reference) / scale
    return delta if direction == "above" else -delta


SEGMENTS_KEY = "_segments"


def segment_key(row: JourneyAggregate, spec: MetricSpec) -> str:
    return f"{row.step}\t{spec.name}\t{row.segment_dimension.value}\t{row.segment_value}"


def worst_segment(
    j: _Judged,
    segments: list[JourneyAggregate],
    params: AnomalyParams,
    levels: Mapping[str, EwStat] | None = None,
) -> tuple[str, str] | None:
    """The segment that concentrates the anomaly, if one does.

    Each segment's deviation is measured from its own usual level (``levels``, once warm;
    else from the step's baseline), so a segment that is always slower (3G) is not blamed for
    being slow, and scaled by the geometric mean of that level and the step's baseline. A
    segment (``min_segment_views``) is a candidate when it is beyond the threshold and the
    other values of its dimension (``min_sibling_views``; the whole step when none can be
    measured) deviate, views-weighted, by at most ``segment_concentration`` of its own
    deviation: a fault hitting everyone is explained by no segment. Candidates rank by the
    share of the step's views they hold times how far they stand out, so the broadest segment
    that explains the anomaly wins (``device_class=mobile`` rather than one mobile browser).
    """
    reference = j.band.baseline if j.band else j.threshold
    direction = j.spec.direction
    floor = j.spec.min_absolute_width
    relaxed = replace(
        params,
        min_sampled_views=params.min_sibling_views,
        min_metric_samples=min(params.min_metric_samples, params.min_sibling_views),
    )
    by_dimension: dict[str, list[tuple[str, float, int, bool]]] = {}
    for row in segments:
        if row.step != j.row.step or row.rum.sampled_views < params.min_sibling_views:
            continue
        value = metric_value(row, j.spec, relaxed)
        if value is None:
            continue
        level = (levels or {}).get(segment_key(row, j.spec))
        usual = (
            level.mean
            if level is not None and level.n >= params.segment_warmup_windows
            else reference
        )
        # scaled by the geometric mean of the segment's usual level and the step's: an
        # additive slowdown does not make fast segments look concentrated, nor a
        # proportional one slow segments
        scale = math.sqrt(max(abs(usual), floor) * max(abs(reference), floor))
        by_dimension.setdefault(row.segment_dimension.value, []).append(
            (
                row.segment_value,
                _deviation(value, usual, direction, scale),
                row.rum.sampled_views,
                row.rum.sampled_views >= params.min_segment_views
                and beyond(value, j.threshold, direction),
            )
        )
    whole = _deviation(j.value, reference, direction, floor)
    total = max(j.row.rum.sampled_views, 1)
    candidates: list[tuple[float, str, str]] = []
    for dimension, members in by_dimension.items():
        for segment, score, views, eligible in members:
            if not eligible or score <= 0:
                continue
            others = [(s, v) for name, s, v, _ in members if name != segment]
            weight = sum(v for _, v in others)
            rest = sum(s * v for s, v in others) / weight if weight else whole
            if rest > params.segment_concentration * score:
                continue
            candidates.append(((score - max(rest, 0.0)) * views / total, dimension, segment))
    if not candidates:
        return None
    best = min(candidates, key=lambda c: (-c[0], c[1], c[2]))
    return best[1], best[2]


def step_dependency(journey: Journey, step_id: str) -> str | None:
    """The catalog dependency a probe step calls, when it calls exactly one."""
    for step in journey.steps:
        if step.id == step_id:
            return step.dependencies[0] if len(step.dependencies) == 1 else None
    return None


def dependency_key(step: str, host: str) -> str:
    return f"{step}\tdependency\t{host}"


def suspected_dependency(
    deps: list[DependencyStats],
    spec: MetricSpec,
    params: AnomalyParams,
    usual_p75: Mapping[str, float] | None = None,
) -> str | None:
    """The dependency failing most, or (latency metrics) the slowest one: above the absolute
    floor, or several times its usual p75 (``usual_p75``: host → ms) at this step."""
    floor = params.dependency_failure_rate
    failing = [d for d in deps if d.requests > 0 and d.failure_rate >= floor]
    if failing:
        worst = max(failing, key=lambda d: (d.failure_rate, d.failures, d.host))
        return worst.provider or worst.host
    if spec.latency:
        usual = usual_p75 or {}

        def slowness(d: DependencyStats) -> float:
            p75 = d.p75_ms or 0.0
            base = usual.get(d.host)
            if base is not None and base > 0 and p75 - base >= params.dependency_slow_delta_ms:
                return p75 / base
            return 0.0

        slow = [
            d
            for d in deps
            if d.p75_ms is not None
            and (
                d.p75_ms >= params.dependency_slow_ms
                or slowness(d) >= params.dependency_slow_factor
            )
        ]
        if slow:
            worst = max(slow, key=lambda d: (slowness(d), d.p75_ms or 0.0, d.host))
            return worst.provider or worst.host
    return None
