"""``experience.aggregates.v1``: perceived performance of a journey step over one window.

One message per journey × step × window × segment, emitted once after the window's grace
period. ``segment_dimension == "all"`` is the whole population; other dimensions carry the
top-N values plus ``"other"``. ``step == "_journey"`` covers the whole journey.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from journeylens.contracts.common import Contract, NonNegative, UtcDatetime

TOPIC = "experience.aggregates.v1"


class SegmentDimension(StrEnum):
    ALL = "all"
    COUNTRY = "country"
    DEVICE_CLASS = "device_class"
    BROWSER = "browser"
    CONNECTION_TYPE = "connection_type"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    NO_DATA = "no_data"


class Scope(StrEnum):
    NONE = "none"
    CONFIRMED = "confirmed"
    RUM_ONLY = "rum_only"
    SYNTHETIC_ONLY = "synthetic_only"


class Quantiles(Contract):
    """Quantiles from a mergeable sketch (relative error stated by the producer)."""

    count: int = Field(ge=0)
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None


class DependencyStats(Contract):
    host: str
    provider: str | None = None
    requests: int = Field(ge=0)
    failures: int = Field(ge=0)
    failure_rate: float = Field(ge=0, le=1)
    p75_ms: float | None = None
    network_errors: int = Field(default=0, ge=0)


class RumStats(Contract):
    page_views: int = Field(ge=0, description="Sample-rate-weighted page views and soft navs.")
    sampled_views: int = Field(ge=0, description="Views actually received.")
    sessions: int = Field(ge=0)
    lcp_ms: Quantiles
    inp_ms: Quantiles
    cls: Quantiles
    fcp_ms: Quantiles
    ttfb_ms: Quantiles
    duration_ms: Quantiles
    js_errors: int = Field(ge=0)
    api_errors: int = Field(ge=0)
    views_with_error: int = Field(ge=0)
    error_rate: float = Field(ge=0, le=1)
    apdex: float | None = Field(default=None, ge=0, le=1)
    apdex_t_ms: float
    satisfied: int = Field(ge=0)
    tolerating: int = Field(ge=0)
    frustrated: int = Field(ge=0)
    conversions: int = Field(ge=0)
    conversion_value: NonNegative = 0.0
    late_events: int = Field(default=0, ge=0)
    dependencies: list[DependencyStats] = Field(default_factory=list)


class LocationStats(Contract):
    location: str
    runs: int = Field(ge=0)
    failures: int = Field(ge=0)
    availability: float | None = Field(default=None, ge=0, le=1)
    duration_ms_p95: float | None = None


class SyntheticStats(Contract):
    runs: int = Field(ge=0)
    failures: int = Field(ge=0)
    availability: float | None = Field(default=None, ge=0, le=1)
    duration_ms: Quantiles
    dns_ms: Quantiles
    connect_ms: Quantiles
    tls_ms: Quantiles
    ttfb_ms: Quantiles
    transfer_ms: Quantiles
    locations: list[LocationStats] = Field(default_factory=list)
    failed_assertions: dict[str, int] = Field(
        default_factory=dict, description="Failure reason → count."
    )


class FunnelStats(Contract):
    """Sessions that reached this step, and (journey level) completed the journey."""

    sessions_entered: int = Field(ge=0)
    sessions_completed: int = Field(ge=0)
    completion_rate: float | None = Field(default=None, ge=0, le=1)


class JourneyAggregate(Contract):
    """Perceived performance of one journey step (or the whole journey) over one window."""

    aggregate_id: str = Field(description="Deterministic: journey|step|window_start|dim|value.")
    journey: str
    step: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    segment_dimension: SegmentDimension = SegmentDimension.ALL
    segment_value: str = "all"
    rum: RumStats
    synthetic: SyntheticStats
    funnel: FunnelStats
    status: HealthStatus
    scope: Scope = Scope.NONE
    reasons: list[str] = Field(default_factory=list, description="Why the status is not healthy.")
    sketch_relative_accuracy: float = 0.01
    schema_version: Literal[1] = 1
