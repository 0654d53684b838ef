"""boomerang.js beacons: a GET query string (often several kB) or a POST
``application/x-www-form-urlencoded`` body (``sendBeacon``, ending in ``&sb=1``).

The collector passes the query string (with or without its ``?``) or the body as ``body``.
One request is one beacon; what it becomes depends on its type (boomerang's own rule,
``BOOMR.utils.isPageLoadBeacon``):

- page load (no ``http.initiator``, or ``spa_hard``) → ``page_view``; ``http.initiator=spa``
  → ``soft_navigation``. ``rt.quit=`` with ``rt.abld=`` is an *abandoned* page load: still a
  page view (what was measured until the user left).
- unload beacon (``rt.quit=`` without ``rt.abld``, the empty flags matter, so blank values
  are kept): not a page view; the late vitals it carries (``c.cls``, ``et.inp``, ``pt.lcp``)
  become a ``web_vital`` event, nothing at all when it carries none.
- ``http.initiator=xhr`` (an XHR/fetch beacon, ``u`` is the request, ``pgu`` the page): with
  ``http.errno`` → an ``error`` event with an :class:`ApiError`; otherwise a ``web_vital``
  event (a late update of the page) holding the call as one dependency request.
- ``http.initiator=error`` → the errors only. ``early=`` beacons (sent before the page-load
  beacon, which repeats them) give nothing. Other initiators are Rejected.
- ``err`` (JSURL array of boomerang's compressed errors) → one ``error`` event for the page.

Fields: ``pgu`` (else ``u``) is the page URL, ``pid`` the page id, ``rt.si`` the session id
(else the page id), ``n`` the beacon number within the page (part of the event id).
Time: ``rt.end`` (else ``rt.tstart``, else ``nt_nav_st``; epoch ms) clamped to
[received_at − 24 h, received_at + 5 min]. Vitals: ``pt.lcp``, ``et.inp``, ``c.cls``,
``pt.fcp``, ``t_resp`` (TTFB). Navigation phases from the ``nt_*`` epoch-ms timestamps;
duration ``t_done``. Connection: ``mob.etype``, ``mob.rtt``, ``mob.dl``. ``restiming`` is
decoded and grouped per host. A bad ``err`` or ``restiming`` value is Rejected on its own
(the beacon still lands without it). No ``u``/``pgu`` at all is a :class:`MalformedBody`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from journeylens.collector.formats import _common as c
from journeylens.collector.formats._boomerang_codecs import (
    CodecError,
    decode_jsurl,
    decode_restiming,
)
from journeylens.collector.formats.base import (
    MalformedBody,
    ParseResult,
    Rejected,
    RequestMeta,
    stable_id,
)
from journeylens.contracts.common import WebVitals
from journeylens.contracts.rum_beacons_v1 import (
    DependencyTiming,
    EventKind,
    JsError,
    NavigationTiming,
    RumEvent,
    SourceFormat,
)

SOURCE = SourceFormat.BOOMERANG
_MAX_FIELDS = 4000
_NAV_TYPES = {"0": "navigate", "1": "reload", "2": "back-forward"}
_SPA = frozenset({"spa", "spa_hard"})
_VITAL_PARAMS = {
    "pt.lcp": "lcp_ms",
    "et.inp": "inp_ms",
    "c.cls": "cls",
    "pt.fcp": "fcp_ms",
    "t_resp": "ttfb_ms",
}


_USED = frozenset(
    {
        "u",
        "pgu",
        "pid",
        "n",
        "rt.si",
        "rt.tstart",
        "rt.end",
        "rt.quit",
        "rt.abld",
        "early",
        "http.initiator",
        "http.method",
        "http.errno",
        "t_done",
        "t_resp",
        "mob.etype",
        "mob.rtt",
        "mob.dl",
        "err",
        "restiming",
        *_VITAL_PARAMS,
    }
)


def _params(body: bytes) -> dict[str, str]:
    """The beacon's parameters we use (blank values kept: ``rt.quit=`` matters).

    Like ``parse_qsl(keep_blank_values=True)``, but only the values we read are
    percent-decoded: a page-load beacon carries ~100 parameters of which ~50 are used.
    """
    text = body.decode("utf-8", "replace").strip().lstrip("?")
    pairs = text.split("&")
    if len(pairs) > _MAX_FIELDS:
        raise MalformedBody("too many fields in the beacon")
    params: dict[str, str] = {}
    for pair in pairs:
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if key in _USED or key.startswith("nt_"):
            params[key] = unquote_plus(value) if "%" in value or "+" in value else value
    return params


class _Beacon:
    """The identifying part of one beacon."""

    __slots__ = ("p", "meta", "url", "page_id", "session_id", "when", "number", "context", "nt")

    def __init__(self, p: Mapping[str, str], meta: RequestMeta) -> None:
        url = c.url_text(p.get("pgu")) or c.url_text(p.get("u"))
        if url is None:
            raise MalformedBody("boomerang beacon needs 'u' or 'pgu'")
        self.p, self.meta, self.url = p, meta, url
        start = p.get("rt.tstart") or p.get("nt_nav_st")
        self.page_id = c.text(p.get("pid")) or stable_id(
            SOURCE, meta.app, url, start, meta.user_agent
        )
        self.session_id = c.text(p.get("rt.si")) or self.page_id
        self.number = p.get("n", "")
        when = (
            c.from_epoch_ms(p.get("rt.end"))
            or c.from_epoch_ms(p.get("rt.tstart"))
            or c.from_epoch_ms(p.get("nt_nav_st"))
        )
        self.when = c.event_time(when, meta)
        self.context = c.connection(p.get("mob.etype"), p.get("mob.rtt"), p.get("mob.dl"))
        self.nt = _NAV_TYPES.get(p.get("nt_nav_type", ""), "navigate")

    def event(self, kind: EventKind, **fields: Any) -> RumEvent:
        return c.build_event(
            event_id=stable_id(
                SOURCE,
                self.meta.app,
                self.session_id,
                self.page_id,
                self.number,
                kind,
                self.p.get("rt.tstart"),
                self.p.get("rt.end"),
            ),
            kind=kind,
            source=SOURCE,
            timestamp=self.when,
            meta=self.meta,
            session_id=self.session_id,
            page_id=self.page_id,
            url=self.url,
            navigation_type=fields.pop("navigation_type", self.nt),
            context=self.context,
            **fields,
        )


def _vitals(p: Mapping[str, str]) -> WebVitals:
    fields: dict[str, float] = {}
    for param, field in _VITAL_PARAMS.items():
        value = c.non_negative(p.get(param))
        if value is not None:
            fields[field] = value
    return c.make_vitals(fields)


def _navigation(p: Mapping[str, str]) -> NavigationTiming | None:
    def ms(key: str) -> float | None:
        return c.non_negative(p.get(key))

    nav_start = ms("nt_nav_st")
    ssl = ms("nt_ssl_st")
    return c.navigation(
        redirect_ms=c.span(ms("nt_red_st"), ms("nt_red_end")),
        dns_ms=c.span(ms("nt_dns_st"), ms("nt_dns_end")),
        connect_ms=c.span(ms("nt_con_st"), ms("nt_con_end")),
        tls_ms=c.span(ssl, ms("nt_con_end")) if ssl else None,
        request_ms=c.span(ms("nt_req_st"), ms("nt_res_st")),
        response_ms=c.span(ms("nt_res_st"), ms("nt_res_end")),
        dom_interactive_ms=c.span(nav_start, ms("nt_domint")),
        dom_content_loaded_ms=c.span(nav_start, ms("nt_domcontloaded_st")),
        load_event_ms=c.span(nav_start, ms("nt_load_end")),
        duration_ms=ms("t_done"),
    )


def _dependencies(raw: str, rejected: list[Rejected]) -> list[DependencyTiming]:
    try:
        entries = decode_restiming(raw)
    except CodecError as exc:
        rejected.append(Rejected(f"restiming: {exc}", raw.encode("utf-8", "replace")))
        return []
    groups = c.DependencyGroups()
    for entry in entries:
        groups.add_url(entry.url, float(entry.duration_ms), size=entry.transfer_bytes)
    return groups.result()


def _frame_source(frame: Mapping[str, Any], page_url: str) -> str | None:
    if isinstance(frame.get("w"), str):
        return str(frame["w"])
    if isinstance(frame.get("wo"), str):  # same-origin file: boomerang strips the origin
        scheme, _, rest = page_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}{frame['wo']}"
    return None


def _error(raw: object, page_url: str) -> JsError | None:
    if not isinstance(raw, dict):
        return None
    message = c.text(raw.get("m"), 2048) or "(no message)"
    frames = [f for f in raw.get("f") or [] if isinstance(f, dict)]
    first = frames[0] if frames else {}
    stack = "\n".join(
        f"    at {f.get('f') or '<anonymous>'} ({_frame_source(f, page_url) or '?'}"
        f":{c.integer(f.get('l')) or 0}:{c.integer(f.get('c')) or 0})"
        for f in frames
    )
    return c.js_error(
        message,
        type_=c.text(raw.get("t")) or "Error",
        source=_frame_source(first, page_url),
        line=c.integer(first.get("l")),
        column=c.integer(first.get("c")),
        stack=stack or None,
        count=c.integer(raw.get("n")) or 1,
    )


def _errors(raw: str | None, page_url: str, rejected: list[Rejected]) -> list[JsError]:
    if not raw:
        return []
    try:
        decoded = decode_jsurl(raw)
    except CodecError as exc:
        rejected.append(Rejected(f"err: {exc}", raw.encode("utf-8", "replace")))
        return []
    items = decoded if isinstance(decoded, list) else [decoded]
    errors = [e for e in (_error(item, page_url) for item in items) if e is not None]
    if len(errors) != len(items):
        rejected.append(Rejected("err: entries must be objects", raw.encode("utf-8", "replace")))
    return errors


def _api_call(beacon: _Beacon) -> RumEvent:
    p = beacon.p
    call_url = c.url_text(p.get("u")) or beacon.url
    duration = c.non_negative(p.get("t_done"))
    status = c.integer(p.get("http.errno"))
    failure = (
        c.api_error(call_url, c.text(p.get("http.method"), 16) or "GET", status, duration)
        if status is not None
        else None
    )
    if failure is not None:
        return beacon.event(EventKind.ERROR, api_errors=[failure])
    groups = c.DependencyGroups()
    groups.add_url(call_url, duration or 0.0)
    return beacon.event(EventKind.WEB_VITAL, dependencies=groups.result())


def parse(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse one boomerang beacon (see the module docstring)."""
    p = _params(body)
    beacon = _Beacon(p, meta)
    result = ParseResult()
    initiator = p.get("http.initiator")
    unload = "rt.quit" in p and "rt.abld" not in p
    errors = _errors(p.get("err"), beacon.url, result.rejected)
    if "early" in p:
        return result
    if initiator == "xhr":
        result.events.append(_api_call(beacon))
    elif unload or initiator == "error":
        vitals = _vitals(p)
        if unload and any(v is not None for v in vitals.model_dump().values()):
            result.events.append(beacon.event(EventKind.WEB_VITAL, vitals=vitals))
    elif initiator is None or initiator in _SPA:
        soft = initiator == "spa"
        kind = EventKind.SOFT_NAVIGATION if soft else EventKind.PAGE_VIEW
        result.events.append(
            beacon.event(
                kind,
                navigation_type="soft-navigation" if soft else beacon.nt,
                vitals=_vitals(p),
                navigation_timing=_navigation(p),
                dependencies=_dependencies(p["restiming"], result.rejected)
                if p.get("restiming")
                else None,
            )
        )
    else:
        result.rejected.append(
            Rejected(f"unsupported boomerang beacon type {initiator[:40]!r}", body[:65536])
        )
        return result
    if errors:
        result.events.append(beacon.event(EventKind.ERROR, errors=errors))
    return result
