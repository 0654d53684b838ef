"""``experience.anomalies.v1``: a metric of a journey step beyond its threshold and baseline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from journeylens.contracts.common import Contract, UtcDatetime
from journeylens.contracts.experience_aggregates_v1 import Scope

TOPIC = "experience.anomalies.v1"


class Anomaly(Contract):
    """A metric beyond both its threshold and its baseline band for N of the last M windows."""

    anomaly_id: str = Field(description="Deterministic: journey|step|metric|window_start.")
    journey: str
    step: str
    metric: str = Field(description="e.g. rum.lcp_ms.p75, rum.error_rate, synthetic.availability")
    window_start: UtcDatetime
    window_end: UtcDatetime
    value: float
    threshold: float | None = None
    baseline: float | None = None
    band_low: float | None = None
    band_high: float | None = None
    direction: Literal["above", "below"] = "above"
    violating_windows: int = Field(ge=1, description="N of the last M windows that violated.")
    of_windows: int = Field(ge=1)
    scope: Scope
    segment_dimension: str | None = None
    segment_value: str | None = None
    dependency: str | None = None
    detected_at: UtcDatetime
    schema_version: Literal[1] = 1
