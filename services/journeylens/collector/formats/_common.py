"""Helpers shared by the format parsers: safe number coercion, clamped timestamps, URL
splitting, dependency grouping and the (unvalidated, pre-checked) RumEvent construction.

Parsers build :class:`RumEvent` with :func:`construct` (no validation): every value handed to
:func:`build_event` must already satisfy the contract (the coercion helpers here guarantee
non-negative finite numbers, bounded strings and aware UTC datetimes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from copy import copy
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel

from journeylens.collector.formats.base import MalformedBody, RequestMeta
from journeylens.contracts.common import WebVitals
from journeylens.contracts.rum_beacons_v1 import (
    ApiError,
    Context,
    DependencyTiming,
    EventKind,
    JsError,
    NavigationTiming,
    RumEvent,
    SourceFormat,
)

_M = TypeVar("_M", bound=BaseModel)


class _Template:
    """A model's defaults, split once into shared immutable ones and per-instance copies."""

    __slots__ = ("defaults", "mutable")

    def __init__(self, model: type[BaseModel]) -> None:
        self.defaults: dict[str, Any] = dict(model.model_construct().__dict__)
        self.mutable = tuple(
            k for k, v in self.defaults.items() if isinstance(v, list | dict | BaseModel)
        )


_TEMPLATES: dict[type[BaseModel], _Template] = {}


def construct(model: type[_M], **values: Any) -> _M:
    """What ``model.model_construct(**values)`` does, without its per-call default resolution
    (the hot path of every parser). Values must already satisfy the model; the model must
    have no private attributes or ``model_post_init`` (true of the contract models).
    Mutable defaults (lists, nested models) are copied per call."""
    template = _template(model)
    fields = template.defaults.copy()
    fields.update(values)
    for key in template.mutable:
        if key not in values:
            fields[key] = copy(fields[key])
    return instantiate(model, fields, set(values))


def instantiate(model: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of ``model`` around ``fields`` (every field present and valid), unchecked."""
    instance = _new(model)
    _set_dict(instance, fields)
    _set_fields_set(instance, fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


# BaseModel's slot descriptors, called directly (a third cheaper than object.__setattr__).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


_isfinite = math.isfinite
MAX_PAST = timedelta(hours=24)
MAX_FUTURE = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_ID = 256
_MAX_URL = 8192

VITAL_FIELDS: dict[str, str] = {
    "LCP": "lcp_ms",
    "INP": "inp_ms",
    "CLS": "cls",
    "FCP": "fcp_ms",
    "TTFB": "ttfb_ms",
}
"""web-vitals metric name (any case) → :class:`WebVitals` field."""


def load_json(body: bytes) -> Any:
    """``orjson.loads`` that turns every decoding problem into :class:`MalformedBody`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body is not JSON: {exc}") from None


def dump_item(item: object) -> bytes:
    """Raw bytes of one item for a :class:`Rejected` entry (best effort, never raises)."""
    try:
        return orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(item).encode("utf-8", "replace")


def number(value: object) -> float | None:
    """A finite float from a JSON number or numeric string; ``None`` otherwise."""
    kind = type(value)
    if kind is float:  # JSON's own types first: the parsers' hottest call
        return value if _isfinite(value) else None  # type: ignore[arg-type,return-value]
    if kind is int:
        result = float(value)  # type: ignore[arg-type]
        return result if _isfinite(result) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str) and value and len(value) < 40:
        try:
            result = float(value)
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def non_negative(value: object) -> float | None:
    """A finite, non-negative float, or ``None`` (negative timings are clock glitches)."""
    result = number(value)
    return result if result is not None and result >= 0 else None


def integer(value: object) -> int | None:
    result = number(value)
    if result is None or abs(result) > 2**53:
        return None
    return int(result)


def text(value: object, limit: int = _MAX_ID) -> str | None:
    """A non-empty string cut to ``limit`` characters, or ``None``."""
    if isinstance(value, str) and value:
        return value[:limit]
    return None


def url_text(value: object) -> str | None:
    return text(value, _MAX_URL)


def sample_rate(value: object, default: float) -> float:
    """A sample rate in (0, 1]; anything else falls back to ``default``."""
    rate = number(value)
    if rate is None or not 0 < rate <= 1:
        return default
    return rate


def clamp_time(candidate: datetime | None, received_at: datetime) -> datetime:
    """The client's time clamped to [received_at − 24 h, received_at + 5 min].

    Browser clocks are wrong often enough that an unbounded client time would open windows
    in the distant past or future; ``None`` (the client sent no time) gives ``received_at``.
    """
    if candidate is None:
        return received_at
    low = received_at - MAX_PAST
    if candidate < low:
        return low
    high = received_at + MAX_FUTURE
    return high if candidate > high else candidate


def from_epoch_ms(value: object) -> datetime | None:
    ms = number(value)
    if ms is None or not 0 < ms < 1e14:
        return None
    return _EPOCH + timedelta(milliseconds=ms)


def from_epoch_ns(value: object) -> datetime | None:
    """OTLP ``*UnixNano`` (a decimal string or a number) to a datetime."""
    if isinstance(value, str) and value.isdigit() and len(value) < 21:
        ns = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        ns = value
    else:
        return None
    if not 0 < ns < 10**20:
        return None
    return _EPOCH + timedelta(microseconds=ns // 1000)


def from_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def event_time(candidate: datetime | None, meta: RequestMeta) -> datetime:
    return clamp_time(candidate, aware(meta.received_at))


def aware(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@lru_cache(maxsize=8192)
def url_path(url: str) -> str:
    """The path of a URL (``/`` when it has none or cannot be parsed); cached per URL."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return "/"
    return path or "/"


def url_host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host or None


def dependency_host(url: str) -> str | None:
    """The host of a URL with its port when the URL names one (``127.0.0.1:8601``): catalog
    dependencies list ``host:port`` and the browser agent reports hosts that way too."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: the host alone
        return host
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def vitals_from(values: Mapping[str, object]) -> WebVitals:
    """:class:`WebVitals` from a mapping keyed by metric name (``lcp``/``LCP``/…)."""
    fields: dict[str, float] = {}
    for name, raw in values.items():
        field = VITAL_FIELDS.get(name.upper()) if isinstance(name, str) else None
        if field is None:
            continue
        value = non_negative(raw)
        if value is not None:
            fields[field] = value
    return make_vitals(fields)


def make_vitals(fields: Mapping[str, float]) -> WebVitals:
    """A :class:`WebVitals` (``model_construct`` cannot take its ``cls`` field by keyword)."""
    return construct(WebVitals, **fields)


def vital(name: str, value: float) -> WebVitals:
    return make_vitals({VITAL_FIELDS[name]: value})


def navigation(**phases: float | None) -> NavigationTiming | None:
    """:class:`NavigationTiming` keeping only non-negative phases; ``None`` when empty."""
    kept: dict[str, Any] = {
        k: v for k, v in phases.items() if v is not None and v >= 0 and math.isfinite(v)
    }
    return construct(NavigationTiming, **kept) if kept else None


def span(start: float | None, end: float | None) -> float | None:
    """``end − start`` when both are known, positive and in order."""
    if start is None or end is None or start <= 0 or end < start:
        return None
    return end - start


def js_error(
    message: str,
    *,
    type_: str | None = None,
    source: str | None = None,
    line: int | None = None,
    column: int | None = None,
    stack: str | None = None,
    count: int = 1,
) -> JsError:
    return construct(
        JsError,
        message=message[:2048],
        type=type_[:256] if type_ else None,
        source=source[:_MAX_URL] if source else None,
        line=line,
        column=column,
        stack=stack[:8192] if stack else None,
        count=max(count, 1),
    )


def api_error(url: str, method: str, status: int, duration_ms: float | None) -> ApiError | None:
    if not 0 <= status <= 999:
        return None
    return construct(
        ApiError,
        url=url,
        method=method.upper()[:16],
        status=status,
        duration_ms=duration_ms,
        host=url_host(url),
    )


class DependencyGroups:
    """Accumulates resource timings per host into :class:`DependencyTiming` (stable order)."""

    __slots__ = ("_hosts",)

    def __init__(self) -> None:
        self._hosts: dict[str, list[float]] = {}

    def add(
        self,
        host: str,
        *,
        requests: int = 1,
        failures: int = 0,
        total_ms: float = 0.0,
        max_ms: float | None = None,
        transfer_bytes: int = 0,
    ) -> None:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = [0, 0, 0.0, 0.0, 0]
        slot[0] += requests
        slot[1] += failures
        slot[2] += total_ms
        slot[3] = max(slot[3], total_ms if max_ms is None else max_ms)
        slot[4] += transfer_bytes

    def add_url(self, url: str, duration_ms: float, *, failed: bool = False, size: int = 0) -> bool:
        host = dependency_host(url)
        if host is None:
            return False
        self.add(host, failures=int(failed), total_ms=duration_ms, transfer_bytes=size)
        return True

    def __bool__(self) -> bool:
        return bool(self._hosts)

    def result(self) -> list[DependencyTiming]:
        hosts = self._hosts
        return [
            instantiate(
                DependencyTiming,
                {
                    "host": host,
                    "provider": None,
                    "requests": int(n),
                    "failures": int(fail),
                    "total_duration_ms": round(total, 3),
                    "max_duration_ms": round(longest, 3),
                    "transfer_bytes": int(size),
                },
                set(_DEPENDENCY_FIELDS_SET),
            )
            for host, (n, fail, total, longest, size) in (
                sorted(hosts.items()) if len(hosts) > 1 else hosts.items()
            )
        ]


_DEPENDENCY_FIELDS_SET = frozenset(
    ("host", "requests", "failures", "total_duration_ms", "max_duration_ms", "transfer_bytes")
)


_CONNECTIONS: dict[tuple[object, ...], Context] = {}
_CONNECTIONS_MAX = 4096


def connection(conn_type: object = None, rtt: object = None, downlink: object = None) -> Context:
    """The connection part of :class:`Context` (the rest is filled by the collector).

    One object per distinct input in the process (contexts are never changed after they are
    built: the collector's enrichment replaces them); types are part of the key (``1`` and
    ``True`` differ here)."""
    key = (type(conn_type), conn_type, type(rtt), rtt, type(downlink), downlink)
    try:
        cached = _CONNECTIONS.get(key)
    except TypeError:  # an unhashable JSON value (a list or an object)
        return _connection(conn_type, rtt, downlink)
    if cached is None:
        if len(_CONNECTIONS) >= _CONNECTIONS_MAX:
            _CONNECTIONS.clear()
        cached = _CONNECTIONS[key] = _connection(conn_type, rtt, downlink)
    return cached


def _connection(conn_type: object, rtt: object, downlink: object) -> Context:
    fields: dict[str, Any] = {}
    kind = text(conn_type, 32)
    if kind is not None:
        fields["connection_type"] = kind
    rtt_ms = non_negative(rtt)
    if rtt_ms is not None:
        fields["rtt_ms"] = rtt_ms
    mbps = non_negative(downlink)
    if mbps is not None:
        fields["downlink_mbps"] = mbps
    return construct(Context, **fields)


def build_event(
    *,
    event_id: str,
    kind: EventKind,
    source: SourceFormat,
    timestamp: datetime,
    meta: RequestMeta,
    session_id: str,
    page_id: str,
    url: str,
    navigation_type: str | None = None,
    vitals: WebVitals | None = None,
    navigation_timing: NavigationTiming | None = None,
    errors: Iterable[JsError] = (),
    api_errors: Iterable[ApiError] = (),
    dependencies: list[DependencyTiming] | None = None,
    context: Context | None = None,
    rate: float | None = None,
    user_agent: str | None = None,
    **extra: Any,
) -> RumEvent:
    """A :class:`RumEvent` from pre-checked values (``model_construct``: no validation)."""
    return construct(
        RumEvent,
        event_id=event_id,
        kind=kind,
        source=source,
        timestamp=timestamp,
        received_at=aware(meta.received_at),
        app=meta.app,
        session_id=session_id,
        page_id=page_id,
        url=url,
        path=url_path(url),
        navigation_type=navigation_type or "navigate",
        vitals=vitals if vitals is not None else construct(WebVitals),
        navigation=navigation_timing,
        errors=list(errors),
        api_errors=list(api_errors),
        dependencies=dependencies or [],
        context=context if context is not None else construct(Context),
        sample_rate=rate if rate is not None else sample_rate(meta.sample_rate, 1.0),
        user_agent=user_agent or meta.user_agent,
        **extra,
    )


_EVENT_FIELDS_SET = frozenset(
    (
        "event_id", "kind", "source", "timestamp", "received_at", "app", "session_id",
        "page_id", "url", "path", "navigation_type", "vitals", "navigation", "errors",
        "api_errors", "dependencies", "context", "sample_rate", "user_agent",
    )
)  # fmt: skip


_VIEW_FIELDS_SET = set(_EVENT_FIELDS_SET)
_SHARED_DEPENDENCY_FIELDS_SET = set(_DEPENDENCY_FIELDS_SET)
"""Fields-set objects shared by the page views and dependency timings the hot path builds
(one set fewer to allocate and free per object). Nothing reads them but ``exclude_unset``
dumps, which no code path uses; a later attribute write would add a name that is already in
them or harmlessly widen them."""


class EventTemplate:
    """`build_event` for the many events of one request: the shared fields are set up once.

    ``template.event(...)`` gives exactly what ``build_event`` gives for the same values.
    """

    __slots__ = ("_base",)

    def __init__(
        self,
        *,
        source: SourceFormat,
        meta: RequestMeta,
        session_id: str,
        page_id: str,
        url: str,
        navigation_type: str | None,
        context: Context,
        rate: float,
    ) -> None:
        base = _template(RumEvent).defaults.copy()
        base["source"] = source
        base["received_at"] = aware(meta.received_at)
        base["app"] = meta.app
        base["session_id"] = session_id
        base["page_id"] = page_id
        base["url"] = url
        base["path"] = url_path(url)
        base["navigation_type"] = navigation_type or "navigate"
        base["navigation"] = None
        base["context"] = context
        base["sample_rate"] = rate
        base["user_agent"] = meta.user_agent
        self._base = base

    def event(
        self,
        event_id: str,
        kind: EventKind,
        timestamp: datetime,
        *,
        vitals: WebVitals | None = None,
        dependencies: list[DependencyTiming] | None = None,
        **changes: Any,
    ) -> RumEvent:
        fields = self._base.copy()
        fields["event_id"] = event_id
        fields["kind"] = kind
        fields["timestamp"] = timestamp
        fields["vitals"] = vitals if vitals is not None else construct(WebVitals)
        fields["errors"] = changes.pop("errors", [])
        fields["api_errors"] = changes.pop("api_errors", [])
        fields["dependencies"] = dependencies or []
        fields_set = set(_EVENT_FIELDS_SET)
        if changes:
            if "url" in changes:
                changes["path"] = url_path(changes["url"])
            fields.update(changes)
            fields_set.update(changes)
        return instantiate(RumEvent, fields, fields_set)

    def view(
        self,
        event_id: str,
        kind: EventKind,
        timestamp: datetime,
        *,
        vitals: WebVitals,
        dependencies: list[DependencyTiming],
        page_id: str,
        url: str,
        navigation_type: str,
        navigation: NavigationTiming | None,
    ) -> RumEvent:
        """``event(..., page_id=, url=, navigation_type=, navigation=)`` for a page view or soft
        navigation, without the generic keyword handling (the parsers' hottest call)."""
        fields = self._base.copy()
        fields["event_id"] = event_id
        fields["kind"] = kind
        fields["timestamp"] = timestamp
        fields["page_id"] = page_id
        fields["url"] = url
        fields["path"] = url_path(url)
        fields["navigation_type"] = navigation_type
        fields["vitals"] = vitals
        fields["navigation"] = navigation
        fields["errors"] = []
        fields["api_errors"] = []
        fields["dependencies"] = dependencies
        return instantiate(RumEvent, fields, _VIEW_FIELDS_SET)


def dependency(
    host: str, requests: int, failures: int, total_ms: float, max_ms: float, transfer_bytes: int
) -> DependencyTiming:
    """One host's :class:`DependencyTiming` as :meth:`DependencyGroups.result` builds it for a
    host added once (durations rounded to µs)."""
    return instantiate(
        DependencyTiming,
        {
            "host": host,
            "provider": None,
            "requests": requests,
            "failures": failures,
            "total_duration_ms": round(total_ms, 3),
            "max_duration_ms": round(max_ms, 3),
            "transfer_bytes": transfer_bytes,
        },
        _SHARED_DEPENDENCY_FIELDS_SET,
    )


def defaults(model: type[BaseModel]) -> dict[str, Any]:
    """A fresh dict of ``model``'s defaults, in field order (for immutable defaults only)."""
    return _template(model).defaults.copy()


def _template(model: type[BaseModel]) -> _Template:
    template = _TEMPLATES.get(model)
    if template is None:
        template = _TEMPLATES[model] = _Template(model)
    return template
