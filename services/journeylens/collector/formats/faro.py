"""Grafana Faro Web SDK payloads (``POST /collect``)::

    {"meta": {"sdk": {...}, "app": {"name", "version", "environment"},
              "session": {"id", "attributes"}, "page": {"id"?, "url"},
              "browser": {"name", "version", "os", "mobile"}, "view": {"name"}, "user"?},
     "measurements": [{"type": "web-vitals", "values": {"lcp": 2310.4}, "timestamp": ISO,
                       "context": {"id"?, "rating"?, "navigation_type"?}}],
     "exceptions": [{"type", "value", "stacktrace": {"frames": [...]}, "timestamp"}],
     "events": [{"name", "domain", "attributes": {all values strings}, "timestamp"}],
     "logs": [...], "traces": {...}}

Faro repeats ``meta`` in every (small) batch; it is read once per request and required
(a body without an object ``meta`` is a :class:`MalformedBody`). Session id
``meta.session.id``; page URL ``meta.page.url``; page id ``meta.page.id``, else a hash of the
session id and page URL.

- ``web-vitals`` measurements → one ``web_vital`` event each (every known key of ``values``:
  lcp, inp, cls, fcp, ttfb), deduplicated by ``context.id`` within the request (the last
  wins). Other measurement types are skipped; a web-vitals measurement without any valid
  vital is Rejected.
- ``exceptions`` → ``error`` events (source/line/column from the innermost frame, the first
  one: Faro keeps the order of ``error.stack``; the frames become the stack text).
- events: ``faro.performance.navigation`` → a ``page_view`` whose navigation timing comes from
  the string attributes (``dnsLookupTime``, ``tcpHandshakeTime``, ``tlsNegotiationTime``,
  ``redirectTime``, ``requestTime``, ``responseTime``, ``duration``; ``ttfb`` is the TTFB
  vital; ``name`` is the URL; ``type`` the navigation type). ``faro.performance.resource``
  events are grouped per host into the dependencies of the navigation event of the same
  ``faroNavigationId`` in the request, else of one ``web_vital`` event per navigation id
  (failure: ``responseStatus`` >= 400; bytes: ``transferSize``, else ``encodedBodySize``).
  ``route_change`` (Faro's router instrumentation) → ``soft_navigation`` to ``toUrl``.
  Faro's own bookkeeping events (``session_*``, ``view_changed``, other ``faro.*``) are
  skipped; any other event is a page marker → a ``step`` event (``step_event`` = name), or a
  ``conversion`` when its attributes hold a numeric ``value`` and a 3-letter ``currency``.
- ``logs`` and ``traces`` are not RUM data here and are skipped.

Times: each item's ISO ``timestamp`` clamped to [received_at − 24 h, received_at + 5 min].
"""

from __future__ import annotations

from collections.abc import Mapping
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
from journeylens.contracts.rum_beacons_v1 import EventKind, RumEvent, SourceFormat

SOURCE = SourceFormat.FARO
_NAVIGATION = "faro.performance.navigation"
_RESOURCE = "faro.performance.resource"
_BOOKKEEPING = frozenset({"session_start", "session_resume", "session_extend", "view_changed"})
_NAV_TYPES = {
    "navigate": "navigate",
    "reload": "reload",
    "back_forward": "back-forward",
    "back-forward": "back-forward",
    "prerender": "prerender",
}


class _BadItem(ValueError):
    pass


class _Page:
    """What ``meta`` says about the session and page (read once per request)."""

    __slots__ = ("meta", "session_id", "page_id", "url", "context")

    def __init__(self, doc: Mapping[str, Any], meta: RequestMeta) -> None:
        faro_meta = doc.get("meta")
        if not isinstance(faro_meta, dict):
            raise MalformedBody("Faro payload needs an object 'meta'")
        session = faro_meta.get("session")
        page = faro_meta.get("page")
        session = session if isinstance(session, dict) else {}
        page = page if isinstance(page, dict) else {}
        self.meta = meta
        self.url = c.url_text(page.get("url")) or ""
        self.session_id = c.text(session.get("id")) or stable_id(
            SOURCE, meta.app, self.url, meta.user_agent
        )
        self.page_id = c.text(page.get("id")) or stable_id(
            SOURCE, meta.app, self.session_id, self.url
        )

    def event(
        self, kind: EventKind, key: tuple[object, ...], when: datetime | None, **fields: Any
    ) -> RumEvent:
        fields.setdefault("url", self.url)
        fields.setdefault("page_id", self.page_id)
        return c.build_event(
            event_id=stable_id(
                SOURCE, self.meta.app, self.session_id, fields["page_id"], kind, *key
            ),
            kind=kind,
            source=SOURCE,
            timestamp=c.event_time(when, self.meta),
            meta=self.meta,
            session_id=self.session_id,
            **fields,
        )


def _items(doc: Mapping[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedBody(f"'{key}' must be an array")
    return value


def _measurement(item: Mapping[str, Any], page: _Page) -> RumEvent | None:
    if item.get("type") != "web-vitals":
        return None
    values = item.get("values")
    vitals = c.vitals_from(values) if isinstance(values, dict) else None
    if vitals is None or all(v is None for v in vitals.model_dump().values()):
        raise _BadItem("web-vitals measurement has no valid lcp/inp/cls/fcp/ttfb value")
    context = item.get("context")
    context = context if isinstance(context, dict) else {}
    nav_type = c.text(context.get("navigation_type") or context.get("navigationType"), 32)
    metric_id = c.text(context.get("id"))
    return page.event(
        EventKind.WEB_VITAL,
        (metric_id or item.get("timestamp"), *sorted(str(k) for k in values or {})),
        c.from_iso(item.get("timestamp")),
        vitals=vitals,
        navigation_type=_NAV_TYPES.get(nav_type or ""),
    )


def _exception(item: Mapping[str, Any], page: _Page) -> RumEvent:
    message = c.text(item.get("value"), 2048)
    kind = c.text(item.get("type"))
    if message is None and kind is None:
        raise _BadItem("exception needs 'type' or 'value'")
    trace = item.get("stacktrace")
    frames = trace.get("frames") if isinstance(trace, dict) else None
    frames = [f for f in frames if isinstance(f, dict)] if isinstance(frames, list) else []
    top = frames[0] if frames else {}
    stack = "\n".join(
        f"    at {f.get('function') or '<anonymous>'} ({f.get('filename') or '?'}"
        f":{c.integer(f.get('lineno')) or 0}:{c.integer(f.get('colno')) or 0})"
        for f in frames
    )
    error = c.js_error(
        message or kind or "",
        type_=kind,
        source=c.url_text(top.get("filename")),
        line=c.integer(top.get("lineno")),
        column=c.integer(top.get("colno")),
        stack=stack or None,
    )
    return page.event(
        EventKind.ERROR,
        (item.get("timestamp"), kind, message),
        c.from_iso(item.get("timestamp")),
        errors=[error],
    )


def _attrs(item: Mapping[str, Any]) -> dict[str, Any]:
    attrs = item.get("attributes")
    return attrs if isinstance(attrs, dict) else {}


def _navigation(item: Mapping[str, Any], page: _Page, deps: c.DependencyGroups) -> RumEvent:
    a = _attrs(item)
    ms = c.non_negative
    ttfb = ms(a.get("ttfb"))
    url = c.url_text(a.get("name")) or page.url
    nav_type = c.text(a.get("type"), 32) or ""
    return page.event(
        EventKind.PAGE_VIEW,
        (a.get("faroNavigationId"), item.get("timestamp")),
        c.from_iso(item.get("timestamp")),
        url=url,
        navigation_type=_NAV_TYPES.get(nav_type),
        vitals=c.make_vitals({"ttfb_ms": ttfb} if ttfb is not None else {}),
        navigation_timing=c.navigation(
            redirect_ms=ms(a.get("redirectTime")),
            dns_ms=ms(a.get("dnsLookupTime")),
            connect_ms=ms(a.get("tcpHandshakeTime")),
            tls_ms=ms(a.get("tlsNegotiationTime")),
            request_ms=ms(a.get("requestTime")),
            response_ms=ms(a.get("responseTime")),
            duration_ms=ms(a.get("duration")),
        ),
        dependencies=deps.result(),
    )


def _add_resource(item: Mapping[str, Any], groups: dict[str, c.DependencyGroups]) -> None:
    a = _attrs(item)
    url = c.url_text(a.get("name"))
    duration = c.non_negative(a.get("duration"))
    if url is None or duration is None:
        raise _BadItem("faro.performance.resource needs 'name' (URL) and 'duration'")
    status = c.integer(a.get("responseStatus"))
    size = c.integer(a.get("transferSize")) or c.integer(a.get("encodedBodySize")) or 0
    nav_id = c.text(a.get("faroNavigationId")) or ""
    if not groups.setdefault(nav_id, c.DependencyGroups()).add_url(
        url, duration, failed=status is not None and status >= 400, size=max(size, 0)
    ):
        raise _BadItem("faro.performance.resource 'name' is not a URL with a host")


def _custom(item: Mapping[str, Any], name: str, page: _Page) -> RumEvent | None:
    a = _attrs(item)
    when = c.from_iso(item.get("timestamp"))
    key = (name, item.get("timestamp"))
    if name == "route_change":
        url = c.url_text(a.get("toUrl")) or page.url
        return page.event(
            EventKind.SOFT_NAVIGATION,
            (*key, url),
            when,
            url=url,
            page_id=stable_id(SOURCE, page.page_id, url, item.get("timestamp")),
            navigation_type="soft-navigation",
        )
    if name.startswith("faro.") or name in _BOOKKEEPING:
        return None
    value = c.non_negative(a.get("value"))
    currency = c.text(a.get("currency"), 8)
    if value is not None and currency is not None and len(currency) == 3 and currency.isalpha():
        return page.event(
            EventKind.CONVERSION,
            key,
            when,
            conversion_value=value,
            currency=currency.upper(),
            step_event=name,
        )
    return page.event(EventKind.STEP, key, when, step_event=name)


def parse(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse one Faro payload (see the module docstring)."""
    doc = c.load_json(body)
    if not isinstance(doc, dict):
        raise MalformedBody("Faro payload must be a JSON object")
    page = _Page(doc, meta)
    measurements, exceptions, events = (
        _items(doc, "measurements"),
        _items(doc, "exceptions"),
        _items(doc, "events"),
    )
    result = ParseResult()
    latest: dict[object, RumEvent] = {}
    for index, item in enumerate(measurements):
        try:
            if not isinstance(item, dict):
                raise _BadItem("measurement must be an object")
            event = _measurement(item, page)
            if event is not None:
                context = item.get("context")
                metric_id = context.get("id") if isinstance(context, dict) else None
                latest[metric_id if isinstance(metric_id, str) else index] = event
        except _BadItem as exc:
            result.rejected.append(Rejected(f"measurements: {exc}", c.dump_item(item), index))
    result.events.extend(latest.values())
    for index, item in enumerate(exceptions):
        try:
            if not isinstance(item, dict):
                raise _BadItem("exception must be an object")
            result.events.append(_exception(item, page))
        except _BadItem as exc:
            result.rejected.append(Rejected(f"exceptions: {exc}", c.dump_item(item), index))
    resources: dict[str, c.DependencyGroups] = {}
    navigations: list[Mapping[str, Any]] = []
    for index, item in enumerate(events):
        try:
            name = c.text(item.get("name")) if isinstance(item, dict) else None
            if name is None:
                raise _BadItem("event must be an object with a 'name'")
            if name == _NAVIGATION:
                navigations.append(item)
            elif name == _RESOURCE:
                _add_resource(item, resources)
            else:
                custom = _custom(item, name, page)
                if custom is not None:
                    result.events.append(custom)
        except _BadItem as exc:
            result.rejected.append(Rejected(f"events: {exc}", c.dump_item(item), index))
    for item in navigations:
        nav_id = c.text(_attrs(item).get("faroNavigationId")) or ""
        result.events.append(_navigation(item, page, resources.pop(nav_id, c.DependencyGroups())))
    for nav_id, groups in sorted(resources.items()):
        result.events.append(
            page.event(
                EventKind.WEB_VITAL, ("resources", nav_id), None, dependencies=groups.result()
            )
        )
    return result
