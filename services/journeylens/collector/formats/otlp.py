"""OpenTelemetry OTLP/HTTP JSON from browser SDKs (``fetch`` keepalive): ``/v1/logs`` and
``/v1/traces``.

OTLP JSON quirks taken as they are: ids are hex strings, ``*UnixNano`` are decimal strings
(numbers accepted too), ``intValue`` is a number *or* a decimal string, ``doubleValue`` may be
an integer; ``AnyValue`` nests ``arrayValue``/``kvlistValue``. Record/span attributes win over
resource attributes.

:func:`parse_logs` — ``resourceLogs[].scopeLogs[].logRecords[]``:

- a ``browser.web_vital`` event (``eventName``, or attribute ``event.name``/``name``) with
  attributes ``browser.web_vital.{name,value,delta,id,rating,navigation_type}`` → a
  ``web_vital`` event. Deduplicated by metric id within the request (the last wins), like the
  web-vitals format; the event id hashes the metric id, so later reports upsert.
- an ``exception`` event (or any record with ``exception.type``/``exception.message``) →
  an ``error`` event.
- any other record (console logs, custom events) is not RUM data and is skipped; a
  web-vital record without a known name, a non-negative value and an id is Rejected.

:func:`parse_traces` — ``resourceSpans[].scopeSpans[].spans[]``, grouped by ``traceId``
(the document-load instrumentation puts one page load in one trace):

- ``documentLoad`` → a ``page_view`` (page id = trace id): DOM milestones from its span
  events relative to ``fetchStart``, FCP from ``firstContentfulPaint``, duration from the
  span; ``documentFetch`` of the same trace adds DNS/connect/TLS/request/response phases and
  TTFB (``responseStart − fetchStart``).
- ``resourceFetch`` spans and fetch/XHR spans (``http.url``/``url.full`` with a method) are
  grouped per host into dependencies (a span with error status, or HTTP status >= 400, is a
  failure; ``http.response_content_length`` gives bytes); a fetch/XHR span with status >= 400
  or 0 also becomes an :class:`ApiError` of an ``error`` event. Dependencies of a trace with
  no ``documentLoad`` in the request land on a ``web_vital`` event (late page update).
- other spans (clicks, custom) are skipped; a known span without a trace id, valid times
  or URL is Rejected.

Session id: ``session.id`` (else the trace id / page id). Page URL: ``url.full``,
``http.url``, ``page.url``, ``browser.page.url`` or ``location.href``. User agent:
``user_agent.original`` / ``http.user_agent`` / ``browser.user_agent`` if present. Times are
clamped to [received_at − 24 h, received_at + 5 min].
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journeylens.collector.formats import _common as c
from journeylens.collector.formats.base import (
    MalformedBody,
    ParseResult,
    Rejected,
    RequestMeta,
    stable_id,
)
from journeylens.collector.formats.web_vitals import page_id_from_metric
from journeylens.contracts.rum_beacons_v1 import ApiError, EventKind, SourceFormat

SOURCE = SourceFormat.OTLP
_MAX_DEPTH = 16
_URL_KEYS = ("url.full", "http.url", "page.url", "browser.page.url", "location.href")
_UA_KEYS = ("user_agent.original", "http.user_agent", "browser.user_agent")
_PAGE_KEYS = ("page.id", "browser.page.id", "faro.page.id")
_WV = "browser.web_vital."
_NAV_TYPES = {
    "navigate",
    "reload",
    "back-forward",
    "back-forward-cache",
    "prerender",
    "restore",
    "back_forward",
    "soft-navigation",
}


class _BadItem(ValueError):
    pass


# --------------------------------------------------------------------------- AnyValue


def any_value(value: object, depth: int = 0) -> Any:
    """The Python value of an OTLP JSON ``AnyValue`` (``None`` when it is not one)."""
    if not isinstance(value, dict) or depth > _MAX_DEPTH:
        return None
    if "stringValue" in value:
        raw = value["stringValue"]
        return raw if isinstance(raw, str) else None
    if "intValue" in value:  # int64: JSON number or decimal string
        raw = value["intValue"]
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lstrip("-").isdigit() and len(raw) < 21:
            return int(raw)
        return None
    if "doubleValue" in value:
        return c.number(value["doubleValue"])
    if "boolValue" in value:
        raw = value["boolValue"]
        return raw if isinstance(raw, bool) else None
    if "arrayValue" in value:
        inner = value["arrayValue"]
        items = inner.get("values") if isinstance(inner, dict) else None
        return [any_value(v, depth + 1) for v in items] if isinstance(items, list) else []
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        pairs = inner.get("values") if isinstance(inner, dict) else None
        return attributes(pairs, depth + 1)
    return None


def attributes(raw: object, depth: int = 0) -> dict[str, Any]:
    """``[{"key", "value": AnyValue}]`` as a dict (malformed entries are skipped)."""
    result: dict[str, Any] = {}
    if not isinstance(raw, list):
        return result
    for entry in raw:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            result[entry["key"]] = any_value(entry.get("value"), depth)
    return result


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...], limit: int = 8192) -> str | None:
    for key in keys:
        value = c.text(attrs.get(key), limit)
        if value is not None:
            return value
    return None


def _walk(doc: object, top: str, scope: str, items: str) -> Iterator[tuple[dict[str, Any], object]]:
    """(resource attributes, item) for every item; raises MalformedBody on a wrong shape."""
    if not isinstance(doc, dict):
        raise MalformedBody("OTLP body must be a JSON object")
    resources = doc.get(top, [])
    if not isinstance(resources, list):
        raise MalformedBody(f"'{top}' must be an array")
    for resource in resources:
        if not isinstance(resource, dict):
            raise MalformedBody(f"'{top}' entries must be objects")
        res = resource.get("resource")
        res_attrs = attributes(res.get("attributes")) if isinstance(res, dict) else {}
        scopes = resource.get(scope, [])
        if not isinstance(scopes, list):
            raise MalformedBody(f"'{scope}' must be an array")
        for scoped in scopes:
            entries = scoped.get(items, []) if isinstance(scoped, dict) else None
            if not isinstance(entries, list):
                raise MalformedBody(f"'{items}' must be an array")
            for entry in entries:
                yield res_attrs, entry


# --------------------------------------------------------------------------- logs


def _merged(res_attrs: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(res_attrs)
    merged.update(attributes(record.get("attributes")))
    return merged


def _record_time(record: Mapping[str, Any]) -> datetime | None:
    return c.from_epoch_ns(record.get("timeUnixNano")) or c.from_epoch_ns(
        record.get("observedTimeUnixNano")
    )


@dataclass(slots=True)
class _Vital:
    attrs: dict[str, Any]
    record: Mapping[str, Any]
    name: str
    value: float
    metric_id: str


def _web_vital(attrs: dict[str, Any], record: Mapping[str, Any]) -> _Vital:
    name = attrs.get(_WV + "name")
    if not isinstance(name, str) or name.upper() not in c.VITAL_FIELDS:
        raise _BadItem("browser.web_vital.name must be one of LCP, INP, CLS, FCP, TTFB")
    value = c.non_negative(attrs.get(_WV + "value"))
    if value is None:
        raise _BadItem("browser.web_vital.value must be a non-negative number")
    metric_id = c.text(attrs.get(_WV + "id"))
    if metric_id is None:
        raise _BadItem("browser.web_vital.id must be a non-empty string")
    return _Vital(attrs, record, name.upper(), value, metric_id)


def _vital_event(vital: _Vital, meta: RequestMeta) -> Any:
    attrs = vital.attrs
    url = _first(attrs, _URL_KEYS) or ""
    session = c.text(attrs.get("session.id"))
    user_agent = _first(attrs, _UA_KEYS, 1024)
    page_id = _first(attrs, _PAGE_KEYS, 256) or page_id_from_metric(
        SOURCE, meta.app, vital.metric_id, url, session or user_agent or meta.user_agent
    )
    nav_type = c.text(attrs.get(_WV + "navigation_type"), 32)
    return c.build_event(
        event_id=stable_id(SOURCE, meta.app, page_id, vital.name, vital.metric_id),
        kind=EventKind.WEB_VITAL,
        source=SOURCE,
        timestamp=c.event_time(_record_time(vital.record), meta),
        meta=meta,
        session_id=session or page_id,
        page_id=page_id,
        url=url,
        navigation_type=(nav_type.replace("_", "-") if nav_type in _NAV_TYPES else None),
        vitals=c.vital(vital.name, vital.value),
        user_agent=user_agent,
    )


def _exception_event(attrs: dict[str, Any], record: Mapping[str, Any], meta: RequestMeta) -> Any:
    body = any_value(record.get("body"))
    message = (
        c.text(attrs.get("exception.message"), 2048)
        or (body[:2048] if isinstance(body, str) and body else None)
        or "(no message)"
    )
    error = c.js_error(
        message,
        type_=c.text(attrs.get("exception.type")),
        stack=c.text(attrs.get("exception.stacktrace"), 8192),
    )
    when = _record_time(record)
    url = _first(attrs, _URL_KEYS) or ""
    session = c.text(attrs.get("session.id"))
    trace = c.text(record.get("traceId"), 64)
    page_id = _first(attrs, _PAGE_KEYS, 256) or trace or stable_id(SOURCE, meta.app, session, url)
    return c.build_event(
        event_id=stable_id(
            SOURCE,
            meta.app,
            session,
            page_id,
            "error",
            record.get("timeUnixNano"),
            record.get("spanId"),
            error.type,
            message,
        ),
        kind=EventKind.ERROR,
        source=SOURCE,
        timestamp=c.event_time(when, meta),
        meta=meta,
        session_id=session or page_id,
        page_id=page_id,
        url=url,
        errors=[error],
        user_agent=_first(attrs, _UA_KEYS, 1024),
    )


def _event_name(record: Mapping[str, Any], attrs: Mapping[str, Any]) -> str | None:
    return (
        c.text(record.get("eventName"))
        or c.text(attrs.get("event.name"))
        or c.text(attrs.get("name"))
    )


def parse_logs(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse an OTLP/HTTP JSON ``/v1/logs`` export (see the module docstring)."""
    doc = c.load_json(body)
    result = ParseResult()
    vitals: dict[tuple[str, str], tuple[int, _Vital]] = {}
    for index, (res_attrs, record) in enumerate(
        _walk(doc, "resourceLogs", "scopeLogs", "logRecords")
    ):
        try:
            if not isinstance(record, dict):
                raise _BadItem("log record must be an object")
            attrs = _merged(res_attrs, record)
            name = _event_name(record, attrs)
            if name == "browser.web_vital":
                vital = _web_vital(attrs, record)
                vitals[(vital.metric_id, vital.name)] = (index, vital)
            elif name == "exception" or "exception.message" in attrs or "exception.type" in attrs:
                result.events.append(_exception_event(attrs, record, meta))
        except _BadItem as exc:
            result.rejected.append(Rejected(str(exc), c.dump_item(record), index))
    for _, vital in sorted(vitals.values(), key=lambda pair: pair[0]):
        result.events.append(_vital_event(vital, meta))
    return result


# --------------------------------------------------------------------------- traces


@dataclass(slots=True)
class _Span:
    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    attrs: dict[str, Any]
    marks: dict[str, int]
    failed: bool

    def mark_ms(self, name: str, origin: str = "fetchStart") -> float | None:
        at, zero = self.marks.get(name), self.marks.get(origin, self.start_ns)
        if at is None or at < zero:
            return None
        return round((at - zero) / 1e6, 3)

    def phase_ms(self, start: str, end: str) -> float | None:
        a, b = self.marks.get(start), self.marks.get(end)
        if a is None or b is None or a <= 0 or b < a:
            return None
        return round((b - a) / 1e6, 3)

    @property
    def duration_ms(self) -> float:
        return round((self.end_ns - self.start_ns) / 1e6, 3)


@dataclass(slots=True)
class _Trace:
    load: _Span | None = None
    fetch: _Span | None = None
    deps: list[_Span] = field(default_factory=list)
    api_errors: list[tuple[_Span, ApiError]] = field(default_factory=list)


def _ns(value: object) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 21:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _span(raw: Mapping[str, Any], res_attrs: Mapping[str, Any]) -> _Span:
    trace_id, span_id = c.text(raw.get("traceId"), 64), c.text(raw.get("spanId"), 32)
    start, end = _ns(raw.get("startTimeUnixNano")), _ns(raw.get("endTimeUnixNano"))
    if trace_id is None or span_id is None:
        raise _BadItem("span needs 'traceId' and 'spanId'")
    if start is None or end is None or end < start or start == 0:
        raise _BadItem("span needs start/endTimeUnixNano with end >= start")
    marks: dict[str, int] = {}
    for event in raw.get("events") or []:
        if isinstance(event, dict) and isinstance(event.get("name"), str):
            at = _ns(event.get("timeUnixNano"))
            if at is not None:
                marks[event["name"]] = at
    attrs = _merged(res_attrs, raw)
    status = raw.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    http_status = c.integer(attrs.get("http.status_code", attrs.get("http.response.status_code")))
    failed = code in (2, "STATUS_CODE_ERROR") or (http_status is not None and http_status >= 400)
    return _Span(
        trace_id, span_id, str(raw.get("name", ""))[:128], start, end, attrs, marks, failed
    )


def _classify(span: _Span, trace: _Trace) -> None:
    if span.name == "documentLoad":
        trace.load = span
        return
    if span.name == "documentFetch":
        trace.fetch = span
        return
    url = _first(span.attrs, ("http.url", "url.full"))
    method = c.text(span.attrs.get("http.method", span.attrs.get("http.request.method")), 16)
    if span.name == "resourceFetch":
        if url is None:
            raise _BadItem("resourceFetch span needs http.url")
        trace.deps.append(span)
        return
    if url is None or method is None:
        return  # not RUM data (user interaction, custom span)
    trace.deps.append(span)
    status = c.integer(
        span.attrs.get("http.status_code", span.attrs.get("http.response.status_code"))
    )
    if status is None and span.failed:
        status = 0
    if status is not None and (status >= 400 or status == 0):
        failure = c.api_error(url, method, status, span.duration_ms)
        if failure is not None:
            trace.api_errors.append((span, failure))


def _trace_events(trace_id: str, trace: _Trace, meta: RequestMeta) -> list[Any]:
    anchor = trace.load or trace.fetch or (trace.deps[0] if trace.deps else None)
    if anchor is None and trace.api_errors:
        anchor = trace.api_errors[0][0]
    if anchor is None:
        return []
    attrs = anchor.attrs
    url = (
        (_first(trace.load.attrs, _URL_KEYS) if trace.load else None)
        or (_first(trace.fetch.attrs, _URL_KEYS) if trace.fetch else None)
        or (_first(attrs, ("page.url", "browser.page.url", "location.href")) or "")
    )
    session = c.text(attrs.get("session.id"))
    page_id = _first(attrs, _PAGE_KEYS, 256) or trace_id
    common: dict[str, Any] = {
        "source": SOURCE,
        "meta": meta,
        "session_id": session or page_id,
        "page_id": page_id,
        "url": url,
        "user_agent": _first(attrs, _UA_KEYS, 1024),
        "timestamp": c.event_time(c.from_epoch_ns(anchor.start_ns), meta),
    }
    groups = c.DependencyGroups()
    for dep in trace.deps:
        size = c.integer(dep.attrs.get("http.response_content_length"))
        groups.add_url(
            _first(dep.attrs, ("http.url", "url.full")) or "",
            dep.duration_ms,
            failed=dep.failed,
            size=size if size and size > 0 else 0,
        )
    events: list[Any] = []
    if trace.load is not None:
        load, fetch = trace.load, trace.fetch
        vitals: dict[str, float] = {}
        fcp = load.mark_ms("firstContentfulPaint")
        ttfb = fetch.mark_ms("responseStart") if fetch else load.mark_ms("responseStart")
        if fcp is not None:
            vitals["fcp_ms"] = fcp
        if ttfb is not None:
            vitals["ttfb_ms"] = ttfb
        phases = fetch or load
        events.append(
            c.build_event(
                event_id=stable_id(SOURCE, meta.app, trace_id, load.span_id, EventKind.PAGE_VIEW),
                kind=EventKind.PAGE_VIEW,
                vitals=c.make_vitals(vitals),
                navigation_timing=c.navigation(
                    redirect_ms=phases.phase_ms("redirectStart", "redirectEnd"),
                    dns_ms=phases.phase_ms("domainLookupStart", "domainLookupEnd"),
                    connect_ms=phases.phase_ms("connectStart", "connectEnd"),
                    tls_ms=phases.phase_ms("secureConnectionStart", "connectEnd"),
                    request_ms=phases.phase_ms("requestStart", "responseStart"),
                    response_ms=phases.phase_ms("responseStart", "responseEnd"),
                    dom_interactive_ms=load.mark_ms("domInteractive"),
                    dom_content_loaded_ms=load.mark_ms("domContentLoadedEventStart"),
                    load_event_ms=load.mark_ms("loadEventEnd"),
                    duration_ms=load.duration_ms,
                ),
                dependencies=groups.result(),
                **common,
            )
        )
    elif groups:
        span_ids = sorted(dep.span_id for dep in trace.deps)
        events.append(
            c.build_event(
                event_id=stable_id(SOURCE, meta.app, trace_id, EventKind.WEB_VITAL, *span_ids),
                kind=EventKind.WEB_VITAL,
                dependencies=groups.result(),
                **common,
            )
        )
    if trace.api_errors:
        span_ids = sorted(span.span_id for span, _ in trace.api_errors)
        events.append(
            c.build_event(
                event_id=stable_id(SOURCE, meta.app, trace_id, EventKind.ERROR, *span_ids),
                kind=EventKind.ERROR,
                api_errors=[e for _, e in trace.api_errors],
                **common,
            )
        )
    return events


def parse_traces(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse an OTLP/HTTP JSON ``/v1/traces`` export (see the module docstring)."""
    doc = c.load_json(body)
    result = ParseResult()
    traces: dict[str, _Trace] = {}
    for index, (res_attrs, raw) in enumerate(_walk(doc, "resourceSpans", "scopeSpans", "spans")):
        try:
            if not isinstance(raw, dict):
                raise _BadItem("span must be an object")
            span = _span(raw, res_attrs)
            trace = traces.setdefault(span.trace_id, _Trace())
            _classify(span, trace)
        except _BadItem as exc:
            result.rejected.append(Rejected(str(exc), c.dump_item(raw), index))
    for trace_id, trace in traces.items():
        result.events.extend(_trace_events(trace_id, trace, meta))
    return result
