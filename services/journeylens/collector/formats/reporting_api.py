"""Reporting API and Network Error Logging: ``application/reports+json`` arrays (a single
report object is taken as an array of one)::

    [{"age": 1520, "type": "network-error", "url": "https://cdn.example.net/app.js",
      "user_agent": "Mozilla/5.0 …",
      "body": {"phase": "connection", "type": "tcp.timed_out", "status_code": 0,
               "elapsed_time": 30012, "server_ip": "203.0.113.7", "protocol": "http/1.1",
               "method": "GET", "sampling_fraction": 1.0, "referrer": "https://shop…/"}}]

- ``network-error`` → a ``network_error`` event with :class:`NetworkError` and one
  :class:`DependencyTiming` for the report's host (``failures`` 1 unless the NEL type is
  ``ok``, duration ``elapsed_time``); ``sampling_fraction`` becomes the sample rate.
- ``csp-violation``, ``deprecation``, ``intervention``, ``crash`` → an ``error`` event whose
  :class:`JsError` has the report type as ``type`` (a CSP violation names the directive and
  the blocked URL in its message). These are page problems the user may feel.
- any other type, a report that is not an object, lacks ``url``/``body``, or a NEL report
  without ``phase``/``type`` → Rejected with the reason.

Reports carry no session or page: both are the event id (one report, one "page"). Time is
``received_at − age`` (the browser queues reports), clamped to [received_at − 24 h,
received_at + 5 min]. The report's own ``user_agent`` wins over the request's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from journeylens.collector.formats import _common as c
from journeylens.collector.formats.base import (
    MalformedBody,
    ParseResult,
    Rejected,
    RequestMeta,
    stable_id,
)
from journeylens.contracts.rum_beacons_v1 import (
    EventKind,
    JsError,
    NetworkError,
    RumEvent,
    SourceFormat,
)

SOURCE = SourceFormat.REPORTING_API
_PAGE_REPORTS = frozenset({"csp-violation", "deprecation", "intervention", "crash"})


class _BadReport(ValueError):
    pass


def _nel(
    report: Mapping[str, Any], body: Mapping[str, Any], meta: RequestMeta, base: dict[str, Any]
) -> RumEvent:
    nel_type, phase = c.text(body.get("type"), 64), c.text(body.get("phase"), 32)
    if nel_type is None or phase is None:
        raise _BadReport("network-error body needs 'type' and 'phase'")
    elapsed = c.non_negative(body.get("elapsed_time"))
    fraction = c.number(body.get("sampling_fraction"))
    status = c.integer(body.get("status_code"))
    failure = c.construct(
        NetworkError,
        type=nel_type,
        phase=phase,
        status_code=status if status is not None and 0 <= status <= 999 else None,
        elapsed_ms=elapsed,
        server_ip_present=bool(c.text(body.get("server_ip"))),
        protocol=c.text(body.get("protocol"), 32),
        method=c.text(body.get("method"), 16),
        sampling_fraction=fraction if fraction is not None and 0 <= fraction <= 1 else None,
    )
    groups = c.DependencyGroups()
    if not groups.add_url(base["url"], elapsed or 0.0, failed=nel_type != "ok"):
        raise _BadReport("network-error 'url' has no host")
    return c.build_event(
        kind=EventKind.NETWORK_ERROR,
        meta=meta,
        network_error=failure,
        dependencies=groups.result(),
        rate=c.sample_rate(fraction, c.sample_rate(meta.sample_rate, 1.0)),
        **base,
    )


def _page_problem(kind: str, body: Mapping[str, Any]) -> JsError:
    def field(*keys: str, limit: int = 8192) -> str | None:
        for key in keys:
            value = c.text(body.get(key), limit)
            if value is not None:
                return value
        return None

    if kind == "csp-violation":
        directive = field("effectiveDirective", "effective-directive", "violatedDirective") or "?"
        blocked = field("blockedURL", "blocked-uri") or "?"
        message = f"CSP {directive} blocked {blocked}"
    elif kind == "crash":
        message = f"crash: {field('reason') or 'unknown'}"
    else:
        message = field("message", limit=2048) or field("id") or kind
    return c.js_error(
        message,
        type_=kind,
        source=field("sourceFile", "source-file"),
        line=c.integer(body.get("lineNumber", body.get("line-number"))),
        column=c.integer(body.get("columnNumber", body.get("column-number"))),
    )


def _report(report: object, meta: RequestMeta) -> RumEvent:
    if not isinstance(report, dict):
        raise _BadReport("report must be an object")
    kind = c.text(report.get("type"), 64)
    url = c.url_text(report.get("url"))
    body = report.get("body")
    if kind is None or url is None or not isinstance(body, dict):
        raise _BadReport("report needs 'type', 'url' and an object 'body'")
    if kind != "network-error" and kind not in _PAGE_REPORTS:
        raise _BadReport(f"unsupported report type {kind[:40]!r}")
    age = c.non_negative(report.get("age")) or 0.0
    user_agent = c.text(report.get("user_agent"), 1024)
    event_id = stable_id(
        SOURCE,
        meta.app,
        kind,
        url,
        age,
        user_agent,
        *(str(body.get(k)) for k in sorted(body) if isinstance(k, str)),
    )
    base: dict[str, Any] = {
        "event_id": event_id,
        "source": SOURCE,
        "session_id": event_id,
        "page_id": event_id,
        "url": url,
        "user_agent": user_agent,
        "timestamp": c.event_time(c.aware(meta.received_at) - timedelta(milliseconds=age), meta)
        if age < 1e12
        else c.event_time(None, meta),
    }
    if kind == "network-error":
        return _nel(report, body, meta, base)
    return c.build_event(
        kind=EventKind.ERROR, meta=meta, errors=[_page_problem(kind, body)], **base
    )


def parse(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse a Reporting API / NEL delivery (see the module docstring)."""
    doc = c.load_json(body)
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise MalformedBody("reports must be a JSON array")
    result = ParseResult()
    for index, report in enumerate(doc):
        try:
            result.events.append(_report(report, meta))
        except _BadReport as exc:
            result.rejected.append(Rejected(str(exc), c.dump_item(report), index))
    return result
