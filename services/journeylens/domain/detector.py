"""The detection façade the worker calls: anomalies, burn rates, incidents, business impact.

Usage (one call per closed window of one journey; rows are experience.aggregates.v1 dicts)::

    detector = Detector(catalog)
    detector.load_state("checkout", table["checkout"])          # if any
    out = detector.observe(rows)                                  # all rows of the window
    table["checkout"] = detector.state_for("checkout")           # JSON-able
    for a in out.anomalies: produce(ANOMALIES, key=a["journey"], value=a)
    for e in out.alerts:    produce(ALERTS, key=e["subject"], value=e)

Time comes from the windows (an event-time clock advanced to each window end), so replaying the
same windows from the same state yields the same output. Windows older than the last one seen
for a journey are ignored (at-least-once replays after a restore are harmless).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journeylens.contracts.catalog import Catalog, Journey
from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate, Scope
from journeylens.domain.alerts import AlertParams, AlertPolicy, EventClock, WindowSignals
from journeylens.domain.anomaly import AnomalyDetector, AnomalyParams, Finding
from journeylens.domain.baseline import Baseline, BaselineParams
from journeylens.domain.burn_rate import BurnRateMonitor, BurnRateParams
from journeylens.domain.impact import journey_row, window_impact

STATE_VERSION = 1


@dataclass(frozen=True)
class DetectorParams:
    anomaly: AnomalyParams = field(default_factory=AnomalyParams)
    burn_rate: BurnRateParams = field(default_factory=BurnRateParams)
    alerts: AlertParams = field(default_factory=AlertParams)
    conversion_baseline: BaselineParams = field(
        default_factory=lambda: BaselineParams(min_relative_width=0.1, min_absolute_width=0.02)
    )
    min_funnel_sessions: int = 20
    """Windows with fewer sessions entering the journey do not teach the conversion baseline."""


@dataclass
class DetectionOutput:
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    """experience.anomalies.v1 Anomaly dicts (JSON mode)."""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    """experience.alerts.v1 AlertEvent dicts (JSON mode, CloudEvents 1.0)."""


class JourneyDetector:
    """All detection state of one journey."""

    def __init__(self, journey: Journey, catalog: Catalog, params: DetectorParams) -> None:
        self.journey = journey
        self.params = params
        self.clock = EventClock()
        self.anomalies = AnomalyDetector(journey, params.anomaly)
        self.burn = BurnRateMonitor(journey, params.burn_rate)
        self.policy = AlertPolicy(journey, self.clock, catalog.maintenance, params.alerts)
        self.conversion = Baseline(params.conversion_baseline)
        self.last_window_end: datetime | None = None

    def observe(self, rows: Sequence[JourneyAggregate]) -> DetectionOutput:
        first = rows[0]
        if self.last_window_end is not None and first.window_start < self.last_window_end:
            return DetectionOutput()  # already seen (replay) or too late to judge
        self.last_window_end = first.window_end
        self.clock.advance_to(first.window_end)
        report = self.anomalies.observe(rows)
        burns = self.burn.observe(rows)
        band = self.conversion.band(first.window_start)
        baseline_rate = band.baseline if band is not None else None
        unhealthy = bool(report.findings or burns)
        impact = None
        if unhealthy:
            segment, step = _explaining_segment(report.findings)
            impact = window_impact(rows, baseline_rate, segment, step)
        window = WindowSignals(first.window_start, first.window_end, report.findings, burns, impact)
        alerts = self.policy.observe(window)
        pending = bool(report.rum_violating or report.synthetic_violating)
        self._learn_conversion(rows, anomalous=unhealthy or pending or self.policy.firing)
        return DetectionOutput([f.anomaly for f in report.findings], alerts)

    def _learn_conversion(self, rows: Sequence[JourneyAggregate], *, anomalous: bool) -> None:
        whole = journey_row(rows)
        if whole is None or whole.funnel.completion_rate is None:
            return
        if whole.funnel.sessions_entered < self.params.min_funnel_sessions:
            return
        if anomalous:
            return  # an incident (or a pending one) never teaches the conversion baseline
        rate = whole.funnel.completion_rate
        band = self.conversion.band(whole.window_start)
        outside = band is not None and band.violated_by(rate, "below")
        self.conversion.update(rate, whole.window_start, anomalous=outside)

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "last_window_end": self.last_window_end.isoformat() if self.last_window_end else None,
            "clock": self.clock.now().isoformat(),
            "anomaly": self.anomalies.to_state(),
            "burn_rate": self.burn.to_state(),
            "alerts": self.policy.to_state(),
            "conversion": self.conversion.to_state(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown detector state version {state.get('version')!r}")
        last = state.get("last_window_end")
        self.last_window_end = datetime.fromisoformat(last) if last else None
        self.clock.advance_to(datetime.fromisoformat(state["clock"]))
        self.anomalies.load_state(state["anomaly"])
        self.burn.load_state(state["burn_rate"])
        self.policy.load_state(state["alerts"])
        self.conversion = Baseline.from_state(state["conversion"], self.params.conversion_baseline)


def _explaining_segment(findings: Iterable[Finding]) -> tuple[tuple[str, str] | None, str | None]:
    """(segment, step) of the first RUM-only finding explained by a segment."""
    for f in findings:
        if f.scope == Scope.RUM_ONLY and f.segment_dimension and f.segment_value:
            return (f.segment_dimension, f.segment_value), f.step
    return None, None


class Detector:
    """Detection for every journey of the catalog; state kept per journey."""

    def __init__(self, catalog: Catalog, params: DetectorParams | None = None) -> None:
        self.catalog = catalog
        self.params = params or DetectorParams()
        self._journeys: dict[str, JourneyDetector] = {}

    def _for(self, journey_id: str) -> JourneyDetector | None:
        if journey_id not in self._journeys:
            journey = self.catalog.journey(journey_id)
            if journey is None:
                return None
            self._journeys[journey_id] = JourneyDetector(journey, self.catalog, self.params)
        return self._journeys[journey_id]

    def state_for(self, journey: str) -> dict[str, Any]:
        """JSON-able state of one journey (store it in the worker's table)."""
        detector = self._for(journey)
        if detector is None:
            raise KeyError(f"journey {journey!r} is not in the catalog")
        return detector.to_state()

    def load_state(self, journey: str, state: Mapping[str, Any] | None) -> None:
        """Restore one journey's state (None or empty = start fresh)."""
        detector = self._for(journey)
        if detector is None:
            return
        if not state:
            self._journeys[journey] = JourneyDetector(detector.journey, self.catalog, self.params)
            return
        detector.load_state(state)

    def observe(self, window_aggregates: Sequence[Mapping[str, Any]]) -> DetectionOutput:
        """Judge closed windows: normally all rows of one window of one journey.

        Rows of several journeys or windows are grouped and processed in window order.
        Rows of journeys not in the catalog (e.g. ``_unmapped``) are ignored.
        """
        parsed = [JourneyAggregate.model_validate(row) for row in window_aggregates]
        groups: dict[tuple[datetime, str], list[JourneyAggregate]] = {}
        for row in parsed:
            groups.setdefault((row.window_start, row.journey), []).append(row)
        out = DetectionOutput()
        for (_, journey_id), rows in sorted(groups.items()):
            detector = self._for(journey_id)
            if detector is None:
                continue
            result = detector.observe(rows)
            out.anomalies.extend(result.anomalies)
            out.alerts.extend(result.alerts)
        return out
