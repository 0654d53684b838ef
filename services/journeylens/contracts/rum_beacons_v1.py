"""``rum.beacons.v1``: one normalized RUM event, keyed by journey id.

Every input format the collector accepts (our beacon JSON, web-vitals, boomerang, OTLP,
Faro, Reporting API) is turned into this one shape before it reaches Kafka.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from journeylens.contracts.common import (
    UNMAPPED,
    Contract,
    NonNegative,
    UtcDatetime,
    WebVitals,
)

TOPIC = "rum.beacons.v1"


class EventKind(StrEnum):
    PAGE_VIEW = "page_view"
    SOFT_NAVIGATION = "soft_navigation"
    WEB_VITAL = "web_vital"
    """A late vitals update for a page already reported (web-vitals, OTLP, Faro)."""
    ERROR = "error"
    NETWORK_ERROR = "network_error"
    STEP = "step"
    """A custom step marker sent by the page (``journeylens.step("checkout:payment")``)."""
    CONVERSION = "conversion"


VIEW_KINDS = frozenset({EventKind.PAGE_VIEW, EventKind.SOFT_NAVIGATION})


class SourceFormat(StrEnum):
    JOURNEYLENS = "journeylens"
    WEB_VITALS = "web-vitals"
    BOOMERANG = "boomerang"
    OTLP = "otlp"
    FARO = "faro"
    REPORTING_API = "reporting-api"


class DeviceClass(StrEnum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    BOT = "bot"
    UNKNOWN = "unknown"


class NavigationTiming(Contract):
    """Navigation timing phases of a page load, in milliseconds from the navigation start."""

    redirect_ms: NonNegative | None = None
    dns_ms: NonNegative | None = None
    connect_ms: NonNegative | None = None
    tls_ms: NonNegative | None = None
    request_ms: NonNegative | None = Field(
        default=None, description="requestStart to responseStart (server think time)."
    )
    response_ms: NonNegative | None = None
    dom_interactive_ms: NonNegative | None = None
    dom_content_loaded_ms: NonNegative | None = None
    load_event_ms: NonNegative | None = None
    duration_ms: NonNegative | None = Field(
        default=None,
        description="Page (or soft navigation) duration: navigation start to load end.",
    )


class JsError(Contract):
    message: str = Field(max_length=2048)
    type: str | None = None
    source: str | None = None
    line: int | None = None
    column: int | None = None
    stack: str | None = Field(default=None, max_length=8192)
    count: int = Field(default=1, ge=1)


class ApiError(Contract):
    """A failed fetch/XHR seen by the page: HTTP status >= 400 or 0 for a network failure."""

    url: str
    method: str = "GET"
    status: int = Field(ge=0, le=999)
    duration_ms: NonNegative | None = None
    host: str | None = None


class DependencyTiming(Contract):
    """Resource timings of one page grouped by the host that served them."""

    host: str
    provider: str | None = Field(
        default=None, description="The catalog dependency the host belongs to, if any."
    )
    requests: int = Field(ge=0)
    failures: int = Field(default=0, ge=0)
    total_duration_ms: NonNegative = 0.0
    max_duration_ms: NonNegative = 0.0
    transfer_bytes: int = Field(default=0, ge=0)


class NetworkError(Contract):
    """A Network Error Logging report (failure of a CDN or third party)."""

    type: str = Field(description="NEL type, e.g. 'tcp.timed_out', 'http.error', 'ok'.")
    phase: str = Field(description="dns | connection | application")
    status_code: int | None = None
    elapsed_ms: NonNegative | None = None
    server_ip_present: bool = False
    protocol: str | None = None
    method: str | None = None
    sampling_fraction: float | None = Field(default=None, ge=0, le=1)


class Context(Contract):
    """Who and where: derived from the User-Agent, headers and the page."""

    device_class: DeviceClass = DeviceClass.UNKNOWN
    browser: str = "unknown"
    browser_version: str | None = None
    os: str = "unknown"
    os_version: str | None = None
    connection_type: str = Field(
        default="unknown", description="effectiveType (4g, 3g, 2g, slow-2g) or wifi/ethernet."
    )
    rtt_ms: NonNegative | None = None
    downlink_mbps: NonNegative | None = None
    country: str = Field(default="unknown", description="ISO 3166-1 alpha-2, or 'unknown'.")


class RumEvent(Contract):
    """A normalized RUM event. The client IP is never part of it."""

    event_id: str = Field(
        description="Deterministic id (same input, same id) so sinks are idempotent on replay."
    )
    kind: EventKind
    source: SourceFormat
    timestamp: UtcDatetime = Field(description="Event time (the browser's clock, clamped).")
    received_at: UtcDatetime
    app: str
    journey: str = UNMAPPED
    step: str = UNMAPPED
    session_id: str
    page_id: str
    url: str = Field(description="Page URL with its query string scrubbed.")
    path: str = "/"
    navigation_type: str = "navigate"
    vitals: WebVitals = Field(default_factory=WebVitals)
    navigation: NavigationTiming | None = None
    errors: list[JsError] = Field(default_factory=list)
    api_errors: list[ApiError] = Field(default_factory=list)
    dependencies: list[DependencyTiming] = Field(default_factory=list)
    network_error: NetworkError | None = None
    context: Context = Field(default_factory=Context)
    synthetic: bool = Field(default=False, description="True for probe traffic.")
    probe_run_id: str | None = None
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    step_event: str | None = Field(default=None, description="Custom step event name, if any.")
    conversion_value: NonNegative | None = None
    currency: str | None = None
    user_agent: str | None = None
    schema_version: Literal[1] = 1
