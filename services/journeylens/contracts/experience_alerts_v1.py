"""``experience.alerts.v1``: alert lifecycle events as CloudEvents 1.0 JSON envelopes.

``type`` is ``io.journeylens.alert.firing`` or ``io.journeylens.alert.resolved``; ``subject``
is the journey id; ``data`` is an :class:`AlertData`. One incident per journey groups its
signals; ``data.fingerprint`` is stable across updates of the same incident.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from journeylens.contracts.common import Contract, NonNegative, UtcDatetime
from journeylens.contracts.experience_aggregates_v1 import Scope

TOPIC = "experience.alerts.v1"

FIRING_TYPE = "io.journeylens.alert.firing"
RESOLVED_TYPE = "io.journeylens.alert.resolved"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    PAGE = "page"
    TICKET = "ticket"
    WARNING = "warning"


class Signal(Contract):
    """One piece of the incident: an anomaly, an SLO burn rate or a synthetic failure."""

    kind: Literal["anomaly", "burn_rate", "synthetic_failure"]
    step: str
    metric: str
    value: float
    threshold: float | None = None
    baseline: float | None = None
    window_start: UtcDatetime
    detail: str | None = None


class BusinessImpact(Contract):
    sessions_affected: int = Field(ge=0)
    conversion_rate_baseline: float | None = None
    conversion_rate_current: float | None = None
    conversion_drop: float | None = Field(
        default=None, description="Baseline minus current conversion rate (absolute)."
    )
    lost_completions: NonNegative = 0.0
    revenue_at_risk: NonNegative = 0.0
    currency: str = "EUR"


class Evidence(Contract):
    suspected_step: str | None = None
    suspected_dependency: str | None = None
    segment_dimension: str | None = None
    segment_value: str | None = None
    failing_locations: list[str] = Field(default_factory=list)
    failed_assertions: list[str] = Field(default_factory=list)
    probe_run_ids: list[str] = Field(default_factory=list)


class AlertData(Contract):
    fingerprint: str
    incident_id: str
    status: AlertStatus
    severity: Severity
    journey: str
    journey_name: str
    category: str
    scope: Scope
    title: str
    summary: str
    started_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    signals: list[Signal] = Field(default_factory=list)
    impact: BusinessImpact
    evidence: Evidence = Field(default_factory=Evidence)
    labels: dict[str, str] = Field(default_factory=dict)


class AlertEvent(Contract):
    """A CloudEvents 1.0 structured-mode JSON envelope."""

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = "/journeylens/worker"
    type: Literal["io.journeylens.alert.firing", "io.journeylens.alert.resolved"]
    subject: str
    time: UtcDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = "https://journeylens.dev/schemas/experience.alerts.v1.schema.json"
    data: AlertData
