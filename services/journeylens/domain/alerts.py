"""Alert policy: one incident per journey, grouping its anomalies, burn rates and probe failures.

Lifecycle per journey (one closed window at a time, time read from a Clock that follows window
ends — never the wall clock):

- a window with at least one signal fires a new incident (CloudEvent ``…alert.firing``);
- while firing, new signals join the incident; an event is emitted again only on a significant
  update: more severe, another scope, or a new kind of signal (e.g. probes start failing);
- it resolves (``…alert.resolved``) after ``resolve_after_windows`` consecutive healthy windows
  (hysteresis);
- a re-firing within ``cooldown_s`` of the resolve reopens the SAME incident (same id and
  fingerprint), so a flapping series is one incident;
- windows overlapping a catalog maintenance window (journey id or ``*``) are ignored entirely:
  nothing fires, nothing resolves, nothing accumulates.

Fingerprint = hash(journey, incident start); event ids hash (fingerprint, type, time): replaying
the same windows yields byte-identical events.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from journeylens.contracts.catalog import Journey, Maintenance
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.experience_aggregates_v1 import Scope
from journeylens.contracts.experience_alerts_v1 import (
    FIRING_TYPE,
    RESOLVED_TYPE,
    AlertData,
    AlertEvent,
    AlertStatus,
    Evidence,
    Severity,
    Signal,
)
from journeylens.domain.anomaly import Finding
from journeylens.domain.burn_rate import BurnAlert
from journeylens.domain.clock import Clock
from journeylens.domain.impact import ImpactTotals, WindowImpact


class EventClock:
    """Event-time :class:`Clock`: it reads what the last window end said (never wall time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def advance_to(self, at: datetime) -> None:
        self._now = max(self._now, at)


_SEVERITY_RANK = {Severity.WARNING: 0, Severity.TICKET: 1, Severity.PAGE: 2}


@dataclass(frozen=True)
class AlertParams:
    resolve_after_windows: int = 3
    cooldown_s: float = 1800.0
    source: str = "/journeylens/worker"
    max_signals: int = 25
    max_evidence_items: int = 10
    update_on_escalation: bool = True


@dataclass(frozen=True)
class WindowSignals:
    """Everything the policy needs of one closed window of one journey."""

    window_start: datetime
    window_end: datetime
    findings: Sequence[Finding] = ()
    burns: Sequence[BurnAlert] = ()
    impact: WindowImpact | None = None

    @property
    def unhealthy(self) -> bool:
        return bool(self.findings or self.burns)


def in_maintenance(
    journey_id: str, maintenance: Sequence[Maintenance], start: datetime, end: datetime
) -> bool:
    for m in maintenance:
        if m.journey not in (journey_id, "*"):
            continue
        m_start, m_end = _utc(datetime.fromisoformat(m.start)), _utc(datetime.fromisoformat(m.end))
        if start < m_end and end > m_start:
            return True
    return False


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def severity_for(journey: Journey, signals: WindowSignals) -> Severity:
    """Burn rate decides first (page / ticket); anomalies weigh by criticality and scope."""
    severity = Severity.WARNING
    for burn in signals.burns:
        candidate = Severity.PAGE if burn.severity == "page" else Severity.TICKET
        severity = max(severity, candidate, key=_SEVERITY_RANK.__getitem__)
    for finding in signals.findings:
        if journey.criticality == "critical":
            candidate = Severity.PAGE if finding.scope == Scope.CONFIRMED else Severity.TICKET
        elif journey.criticality == "high":
            candidate = Severity.TICKET
        else:
            candidate = Severity.WARNING
        severity = max(severity, candidate, key=_SEVERITY_RANK.__getitem__)
    return severity


def signal_of_finding(f: Finding) -> Signal:
    kind = "synthetic_failure" if f.metric == "synthetic.availability" else "anomaly"
    details = [f.scope.value]
    if f.segment_dimension:
        details.append(f"segment {f.segment_dimension}={f.segment_value}")
    if f.dependency:
        details.append(f"dependency {f.dependency}")
    if f.failing_locations:
        details.append("locations " + ",".join(f.failing_locations))
    return Signal(
        kind=kind,
        step=f.step,
        metric=f.metric,
        value=f.value,
        threshold=f.threshold,
        baseline=f.baseline,
        window_start=f.window_start,
        detail="; ".join(details),
    )


def signal_of_burn(b: BurnAlert) -> Signal:
    return Signal(
        kind="burn_rate",
        step=JOURNEY_LEVEL,
        metric=f"slo.{b.slo}.burn_rate",
        value=round(b.long_burn, 6),
        threshold=b.factor,
        window_start=b.window_start,
        detail=(
            f"{b.sli} SLO {b.slo}: {b.long_burn:.1f}x over {_span(b.long_s)}, "
            f"{b.short_burn:.1f}x over {_span(b.short_s)} (rule {b.rule}, {b.severity})"
        ),
    )


def _span(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def _digest(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:length]


@dataclass
class Incident:
    incident_id: str
    fingerprint: str
    started_at: datetime
    status: AlertStatus = AlertStatus.FIRING
    resolved_at: datetime | None = None
    severity: Severity = Severity.WARNING
    scope: Scope = Scope.NONE
    sides: set[str] = field(default_factory=set)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    impact: ImpactTotals = field(default_factory=ImpactTotals)
    healthy_streak: int = 0
    reopened: int = 0

    def to_state(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "fingerprint": self.fingerprint,
            "started_at": self.started_at.isoformat(),
            "status": self.status.value,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "severity": self.severity.value,
            "scope": self.scope.value,
            "sides": sorted(self.sides),
            "signals": self.signals,
            "evidence": self.evidence,
            "impact": self.impact.to_state(),
            "healthy_streak": self.healthy_streak,
            "reopened": self.reopened,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Incident:
        resolved = state.get("resolved_at")
        return cls(
            incident_id=state["incident_id"],
            fingerprint=state["fingerprint"],
            started_at=datetime.fromisoformat(state["started_at"]),
            status=AlertStatus(state["status"]),
            resolved_at=datetime.fromisoformat(resolved) if resolved else None,
            severity=Severity(state["severity"]),
            scope=Scope(state["scope"]),
            sides=set(state.get("sides", [])),
            signals=dict(state.get("signals", {})),
            evidence=dict(state.get("evidence", {})),
            impact=ImpactTotals.from_state(state["impact"]),
            healthy_streak=int(state.get("healthy_streak", 0)),
            reopened=int(state.get("reopened", 0)),
        )


class AlertPolicy:
    """Incident lifecycle of one journey."""

    def __init__(
        self,
        journey: Journey,
        clock: Clock,
        maintenance: Sequence[Maintenance] = (),
        params: AlertParams | None = None,
    ) -> None:
        self.journey = journey
        self.clock = clock
        self.maintenance = list(maintenance)
        self.params = params or AlertParams()
        self.incident: Incident | None = None

    @property
    def firing(self) -> bool:
        return self.incident is not None and self.incident.status == AlertStatus.FIRING

    def to_state(self) -> dict[str, Any]:
        return {"incident": self.incident.to_state() if self.incident else None}

    def load_state(self, state: dict[str, Any]) -> None:
        raw = state.get("incident")
        self.incident = Incident.from_state(raw) if raw else None

    # -- lifecycle -------------------------------------------------------------------------
    def observe(self, window: WindowSignals) -> list[dict[str, Any]]:
        """Advance the lifecycle by one window; returns AlertEvent dicts (JSON mode)."""
        if in_maintenance(
            self.journey.id, self.maintenance, window.window_start, window.window_end
        ):
            return []
        now = self.clock.now()
        incident = self.incident
        if window.unhealthy:
            return self._unhealthy(window, now)
        if incident is None:
            return []
        if incident.status == AlertStatus.RESOLVED:
            assert incident.resolved_at is not None
            if (now - incident.resolved_at).total_seconds() > self.params.cooldown_s:
                self.incident = None
            return []
        incident.healthy_streak += 1
        if incident.healthy_streak < self.params.resolve_after_windows:
            return []
        incident.status = AlertStatus.RESOLVED
        incident.resolved_at = now
        return [self._event(incident, now)]

    def _unhealthy(self, window: WindowSignals, now: datetime) -> list[dict[str, Any]]:
        incident = self.incident
        if incident is not None and incident.status == AlertStatus.RESOLVED:
            assert incident.resolved_at is not None
            if (now - incident.resolved_at).total_seconds() > self.params.cooldown_s:
                incident = None
        severity = severity_for(self.journey, window)
        if incident is None:
            incident = self._open(window.window_start)
            self._absorb(incident, window, severity)
            return [self._event(incident, now)]
        incident.healthy_streak = 0
        if incident.status == AlertStatus.RESOLVED:
            incident.status = AlertStatus.FIRING
            incident.resolved_at = None
            incident.reopened += 1
            self._absorb(incident, window, severity)
            return [self._event(incident, now)]
        before = (incident.severity, incident.scope, _kinds(incident))
        self._absorb(incident, window, severity)
        changed = (incident.severity, incident.scope, _kinds(incident)) != before
        if changed and self.params.update_on_escalation:
            return [self._event(incident, now)]
        return []

    def _open(self, start: datetime) -> Incident:
        fingerprint = _digest(self.journey.id, start.isoformat())
        incident = Incident(
            incident_id=f"{self.journey.id}:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            fingerprint=fingerprint,
            started_at=start,
        )
        self.incident = incident
        return incident

    def _absorb(self, incident: Incident, window: WindowSignals, severity: Severity) -> None:
        incident.severity = max(incident.severity, severity, key=_SEVERITY_RANK.__getitem__)
        for finding in window.findings:
            incident.sides.add("confirmed" if finding.scope == Scope.CONFIRMED else finding.side)
            self._add_signal(incident, signal_of_finding(finding))
        for burn in window.burns:
            incident.sides.add("synthetic" if burn.sli == "availability" else "rum")
            self._add_signal(incident, signal_of_burn(burn))
        incident.scope = _scope_of(incident.sides)
        self._merge_evidence(incident, window.findings)
        if window.impact is not None:
            incident.impact.add(window.impact)

    def _add_signal(self, incident: Incident, signal: Signal) -> None:
        key = f"{signal.kind}|{signal.step}|{signal.metric}"
        incident.signals.pop(key, None)  # re-insert: most recent last
        incident.signals[key] = signal.model_dump(mode="json")
        while len(incident.signals) > self.params.max_signals:
            incident.signals.pop(next(iter(incident.signals)))

    def _merge_evidence(self, incident: Incident, findings: Sequence[Finding]) -> None:
        ev = incident.evidence
        cap = self.params.max_evidence_items
        steps: Counter[str] = Counter(ev.get("step_counts", {}))
        for f in findings:
            if f.step != JOURNEY_LEVEL:
                steps[f.step] += 1
            else:
                # a journey-level anomaly points at the steps violating on its side
                steps.update(f.violating_steps)
            if f.dependency and not ev.get("suspected_dependency"):
                ev["suspected_dependency"] = f.dependency
            if f.segment_dimension and not ev.get("segment_dimension"):
                ev["segment_dimension"] = f.segment_dimension
                ev["segment_value"] = f.segment_value
            ev["failing_locations"] = sorted(
                {*ev.get("failing_locations", []), *f.failing_locations}
            )[:cap]
            assertions = list(ev.get("failed_assertions", []))
            assertions += [a for a in f.failed_assertions if a not in assertions]
            ev["failed_assertions"] = assertions[:cap]
        ev["step_counts"] = dict(sorted(steps.items()))
        order = {s.id: i for i, s in enumerate(self.journey.steps)}
        if steps:
            ev["suspected_step"] = min(
                steps, key=lambda s: (-steps[s], order.get(s, len(order)), s)
            )

    # -- events ----------------------------------------------------------------------------
    def _event(self, incident: Incident, now: datetime) -> dict[str, Any]:
        firing = incident.status == AlertStatus.FIRING
        event_type = FIRING_TYPE if firing else RESOLVED_TYPE
        signals = [Signal.model_validate(s) for s in incident.signals.values()]
        ev = incident.evidence
        evidence = Evidence(
            suspected_step=ev.get("suspected_step"),
            suspected_dependency=ev.get("suspected_dependency"),
            segment_dimension=ev.get("segment_dimension"),
            segment_value=ev.get("segment_value"),
            failing_locations=ev.get("failing_locations", []),
            failed_assertions=ev.get("failed_assertions", []),
        )
        impact = incident.impact.business_impact(
            self.journey.value_per_completion, self.journey.currency
        )
        title = _title(self.journey, incident, evidence, signals)
        data = AlertData(
            fingerprint=incident.fingerprint,
            incident_id=incident.incident_id,
            status=incident.status,
            severity=incident.severity,
            journey=self.journey.id,
            journey_name=self.journey.name,
            category=self.journey.category.value,
            scope=incident.scope,
            title=title,
            summary=_summary(
                incident, signals, impact.sessions_affected, impact.revenue_at_risk, impact.currency
            ),
            started_at=incident.started_at,
            resolved_at=incident.resolved_at,
            signals=signals,
            impact=impact,
            evidence=evidence,
            labels={
                "journey": self.journey.id,
                "category": self.journey.category.value,
                "criticality": self.journey.criticality,
                "app": self.journey.app,
                "severity": incident.severity.value,
                "scope": incident.scope.value,
            },
        )
        event = AlertEvent(
            id=_digest(incident.fingerprint, event_type, now.isoformat(), length=32),
            source=self.params.source,
            type=event_type,
            subject=self.journey.id,
            time=now,
            data=data,
        )
        return event.model_dump(mode="json")


def _kinds(incident: Incident) -> frozenset[str]:
    return frozenset(key.split("|", 1)[0] for key in incident.signals)


def _scope_of(sides: set[str]) -> Scope:
    if "confirmed" in sides or {"rum", "synthetic"} <= sides:
        return Scope.CONFIRMED
    if "rum" in sides:
        return Scope.RUM_ONLY
    if "synthetic" in sides:
        return Scope.SYNTHETIC_ONLY
    return Scope.NONE


_SCOPE_TEXT = {
    Scope.CONFIRMED: "confirmed by users and probes",
    Scope.RUM_ONLY: "seen by real users only",
    Scope.SYNTHETIC_ONLY: "seen by probes only",
    Scope.NONE: "unclassified",
}


def _title(journey: Journey, incident: Incident, evidence: Evidence, signals: list[Signal]) -> str:
    state = "resolved" if incident.status == AlertStatus.RESOLVED else "degraded"
    where = f" at step {evidence.suspected_step}" if evidence.suspected_step else ""
    metrics = sorted({s.metric for s in signals})
    head = ", ".join(metrics[:3]) + ("…" if len(metrics) > 3 else "")
    return f"{journey.name} {state}{where}: {head} ({_SCOPE_TEXT[incident.scope]})"


def _summary(
    incident: Incident, signals: list[Signal], sessions: int, revenue: float, currency: str
) -> str:
    parts = [
        f"{s.metric} at {s.step} = {s.value:.4g}"
        + (f" (threshold {s.threshold:.4g})" if s.threshold is not None else "")
        for s in signals[-5:]
    ]
    text = "; ".join(parts)
    text += f". {sessions} sessions affected, revenue at risk {revenue:.2f} {currency}."
    if incident.reopened:
        text += f" Reopened {incident.reopened}x (flapping)."
    return text
