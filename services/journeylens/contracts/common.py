"""Shared pieces of the topic contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

UNMAPPED = "_unmapped"
"""Journey and step of a beacon that matches no journey of the catalog."""

JOURNEY_LEVEL = "_journey"
"""The step value of an aggregate that covers the whole journey."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A timestamp normalised to UTC (naive values are taken as UTC)."""

NonNegative = Annotated[float, Field(ge=0)]


class Contract(BaseModel):
    """Base of every message model: tolerant readers (unknown fields ignored), strict types."""

    model_config = ConfigDict(extra="ignore", frozen=False, populate_by_name=True)


class WebVitals(Contract):
    """Core Web Vitals and friends of one page (milliseconds, CLS unitless)."""

    lcp_ms: NonNegative | None = None
    inp_ms: NonNegative | None = None
    cls: NonNegative | None = None
    fcp_ms: NonNegative | None = None
    ttfb_ms: NonNegative | None = None


class Vital(StrEnum):
    LCP = "lcp_ms"
    INP = "inp_ms"
    CLS = "cls"
    FCP = "fcp_ms"
    TTFB = "ttfb_ms"


class TimingPhases(Contract):
    """Network phases of one request, in milliseconds."""

    dns_ms: NonNegative | None = None
    connect_ms: NonNegative | None = None
    tls_ms: NonNegative | None = None
    ttfb_ms: NonNegative | None = None
    transfer_ms: NonNegative | None = None
