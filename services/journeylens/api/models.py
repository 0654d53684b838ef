"""Response models of the API (the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Rating = Literal["good", "needs_improvement", "poor", "no_data"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Band(Model):
    good: float = Field(description="Good up to (or from, when direction is below) this value.")
    poor: float = Field(description="Poor beyond this value.")
    direction: Literal["above", "below"] = Field(description="Which way is bad.")


class VitalEvidence(Model):
    name: Literal["lcp", "inp", "cls", "fcp", "ttfb"]
    p75: float | None
    threshold: Band
    rating: Rating


class Signal(Model):
    kind: str
    step: str
    metric: str
    value: float
    threshold: float | None
    baseline: float | None
    window_start: datetime
    detail: str | None


class Incident(Model):
    """The current state of an incident (the latest of its alert events)."""

    incident_id: str
    fingerprint: str
    journey: str
    journey_name: str
    status: Literal["firing", "resolved"] | str
    severity: str
    scope: str
    title: str
    summary: str
    started_at: datetime
    resolved_at: datetime | None
    updated_at: datetime
    sessions_affected: int
    conversion_drop: float | None
    lost_completions: float
    revenue_at_risk: float
    currency: str
    suspected_step: str | None
    suspected_dependency: str | None
    segment_dimension: str | None
    segment_value: str | None
    failing_locations: list[str]
    failed_assertions: list[str]
    signals: list[Signal]


class StepInfo(Model):
    id: str
    name: str | None


class JourneyHealth(Model):
    id: str
    name: str
    category: str
    criticality: str
    value_per_completion: float
    currency: str
    steps: list[StepInfo]
    status: Literal["healthy", "degraded", "failing", "no_data"] | str
    scope: str
    reasons: list[str]
    window_start: datetime | None = Field(description="The last window of the journey.")
    window_end: datetime | None
    vitals: list[VitalEvidence] = Field(description="p75 of the last window vs thresholds.")
    error_rate: float | None
    error_rate_threshold: float
    apdex: float | None
    page_views: int
    sessions: int
    availability: float | None = Field(description="Synthetic availability over the last hour.")
    availability_threshold: float
    synthetic_runs: int = Field(description="Probe runs over the last hour.")
    open_incidents: list[Incident]
    revenue_at_risk: float = Field(description="Sum over the open incidents.")


class JourneyList(Model):
    generated_at: datetime
    items: list[JourneyHealth]


class Point(Model):
    t: datetime
    value: float | None


class Timeseries(Model):
    journey: str
    step: str
    metric: str
    unit: str
    segment_dimension: str
    segment_value: str
    from_: datetime = Field(alias="from")
    to: datetime
    resolution: Literal["1m", "5m", "1h", "1d"]
    source: str = Field(description="Table the points come from.")
    threshold: Band | None
    points: list[Point]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SegmentRow(Model):
    value: str
    page_views: int
    sessions: int
    lcp_p75_ms: float | None
    inp_p75_ms: float | None
    cls_p75: float | None
    error_rate: float | None
    apdex: float | None
    ratings: dict[str, Rating]


class Breakdown(Model):
    journey: str
    step: str
    dimension: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[SegmentRow]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DependencyRow(Model):
    host: str
    provider: str | None
    requests: int
    failures: int
    failure_rate: float
    p75_ms: float | None = Field(description="Request-weighted mean of the window p75s.")
    network_errors: int
    impact: float = Field(description="failures + requests x p75 / 1000 (slow-request seconds)")
    steps: list[str]


class Dependencies(Model):
    journey: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[DependencyRow]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FunnelStep(Model):
    step: str
    name: str | None
    sessions_entered: int
    share_of_first: float | None
    drop_off: float | None = Field(description="Share lost since the previous step.")


class Funnel(Model):
    journey: str
    from_: datetime = Field(alias="from")
    to: datetime
    steps: list[FunnelStep]
    sessions_entered: int
    sessions_completed: int
    completion_rate: float | None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RumSide(Model):
    page_views: int
    lcp_p75_ms: float | None
    ttfb_p75_ms: float | None
    duration_p75_ms: float | None
    error_rate: float | None
    apdex: float | None


class SyntheticSide(Model):
    runs: int
    failures: int
    availability: float | None
    duration_p95_ms: float | None


class CompareStep(Model):
    step: str
    name: str | None
    rum: RumSide
    synthetic: SyntheticSide


class Compare(Model):
    journey: str
    from_: datetime = Field(alias="from")
    to: datetime
    steps: list[CompareStep]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LocationRow(Model):
    location: str
    runs: int
    failures: int
    availability: float | None
    duration_p95_ms: float | None


class Locations(Model):
    journey: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[LocationRow]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Page(Model):
    limit: int
    offset: int
    next_offset: int | None


class IncidentPage(Page):
    items: list[Incident]


class AlertEvent(Model):
    id: str
    type: str
    time: datetime
    incident_id: str
    fingerprint: str
    status: str
    severity: str
    journey: str
    title: str
    summary: str
    revenue_at_risk: float
    currency: str


class AlertPage(Page):
    items: list[AlertEvent]


class AnomalyOut(Model):
    anomaly_id: str
    journey: str
    step: str
    metric: str
    window_start: datetime
    window_end: datetime
    value: float
    threshold: float | None
    baseline: float | None
    band_low: float | None
    band_high: float | None
    direction: str
    violating_windows: int
    of_windows: int
    scope: str
    segment_dimension: str | None
    segment_value: str | None
    dependency: str | None
    detected_at: datetime


class AnomalyPage(Page):
    items: list[AnomalyOut]
