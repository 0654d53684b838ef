"""GoogleChrome ``web-vitals`` metric objects, as integrators post them.

The body is one metric object or an array of them (``navigator.sendBeacon`` posts
``text/plain;charset=UTF-8``, so the content type is not trusted)::

    {"name": "LCP", "value": 2310.4, "rating": "good", "delta": 2310.4,
     "id": "v5-1795600780123-4728391029384", "navigationType": "navigate",
     "attribution": {...}}

Each distinct metric ``id`` becomes one ``web_vital`` event. With ``reportAllChanges`` the
same ``id`` repeats in a request with a growing ``value``: the last report wins (its value is
the sum of the deltas so far). Across requests, a later report of the same ``id`` gets the
same event id, so sinks keep one row per metric instance (an upsert of the latest value).

The library sends no page or session id, so these optional fields that integrators commonly
add are read: ``pageId``/``page_id``, ``sessionId``/``session_id``, ``page``/``url``/``href``
(page URL), ``timestamp``/``ts`` (epoch ms). Without them:

- page id: a hash of the metric id *prefix* ``v<major>-<epoch ms>`` (the time the metric
  was initialised, which for the metrics of one page load is the same millisecond in
  practice), the page URL and the session id (else the request's User-Agent). Metrics
  initialised in different milliseconds, or after a bfcache restore, get different page
  ids (fragile by nature).
- session id: the page id (one session per page: web-vitals has no session notion).
- URL: empty (the collector may fill it from the ``Referer``), path ``/``.
- time: ``received_at`` (metrics are sent as they settle). A client time is clamped to
  [received_at − 24 h, received_at + 5 min].

A non-object item, an unknown ``name``, or a missing/negative ``value`` is Rejected.
"""

from __future__ import annotations

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

SOURCE = SourceFormat.WEB_VITALS
_NAVIGATION_TYPES = frozenset(
    {
        "navigate",
        "reload",
        "back-forward",
        "back-forward-cache",
        "prerender",
        "restore",
        "soft-navigation",
    }
)


def _first_text(item: dict[str, Any], *keys: str, limit: int = 256) -> str | None:
    for key in keys:
        value = c.text(item.get(key), limit)
        if value is not None:
            return value
    return None


def _id_prefix(metric_id: str) -> str:
    """``v5-1700000000000`` from ``v5-1700000000000-1234567890123`` (else the whole id)."""
    parts = metric_id.split("-", 2)
    if len(parts) == 3 and parts[0][:1] == "v" and parts[1].isdigit():
        return f"{parts[0]}-{parts[1]}"
    return metric_id


def page_id_from_metric(source: str, app: str, metric_id: str, url: str, who: str | None) -> str:
    """A page id for metrics without one: hash of the id prefix, page URL and ``who``
    (session id or User-Agent), see the module docstring."""
    return stable_id(source, app, _id_prefix(metric_id), url, who)


def _check(item: object) -> str | None:
    """Why the item is not a usable metric, or ``None``."""
    if not isinstance(item, dict):
        return "metric must be an object"
    name = item.get("name")
    if not isinstance(name, str) or name not in c.VITAL_FIELDS:
        return "'name' must be one of LCP, INP, CLS, FCP, TTFB"
    raw = item.get("value")
    if isinstance(raw, str) or c.non_negative(raw) is None:
        return "'value' must be a non-negative number"
    if c.text(item.get("id")) is None:
        return "'id' must be a non-empty string"
    return None


def _event(item: dict[str, Any], meta: RequestMeta) -> RumEvent:
    name: str = item["name"]
    value = c.non_negative(item["value"]) or 0.0
    metric_id: str = item["id"][:256]
    url = _first_text(item, "page", "url", "href", limit=8192) or ""
    session = _first_text(item, "sessionId", "session_id")
    page_id = _first_text(item, "pageId", "page_id") or page_id_from_metric(
        SOURCE, meta.app, metric_id, url, session or meta.user_agent
    )
    session_id = session or page_id
    nav_type = c.text(item.get("navigationType"), 32)
    when = c.from_epoch_ms(item.get("timestamp", item.get("ts")))
    return c.build_event(
        event_id=stable_id(SOURCE, meta.app, page_id, name, metric_id),
        kind=EventKind.WEB_VITAL,
        source=SOURCE,
        timestamp=c.event_time(when, meta),
        meta=meta,
        session_id=session_id,
        page_id=page_id,
        url=url,
        navigation_type=nav_type if nav_type in _NAVIGATION_TYPES else None,
        vitals=c.vital(name, value),
    )


def parse(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse one web-vitals metric object or an array of them (see the module docstring)."""
    doc = c.load_json(body)
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise MalformedBody("body must be a metric object or an array of them")
    result = ParseResult()
    latest: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for index, item in enumerate(doc):
        reason = _check(item)
        if reason is not None:
            result.rejected.append(Rejected(reason, c.dump_item(item), index))
            continue
        latest[(item["id"], item["name"])] = (index, item)  # later report of an id wins
    for _, item in sorted(latest.values(), key=lambda pair: pair[0]):
        result.events.append(_event(item, meta))
    return result
