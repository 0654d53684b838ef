"""Our own beacon JSON, sent by the browser agent (``sdk/browser``, served as ``/rum.js``).

One request is one batch of items recorded on one page (``sendBeacon``/``fetch`` keepalive,
``Content-Type: text/plain;charset=UTF-8`` or ``application/json``)::

    {
      "v": 1,                          # format version (required, 1)
      "app": "demo-shop",              # informational: the collector's app (endpoint) wins
      "sid": "s-7f3a…",                # session id (required)
      "pid": "p-19c2…",                # page id (required): one per hard page load
      "url": "https://shop.example/checkout?step=2",   # page URL (required)
      "ts": 1795600795000,             # send time, epoch ms (optional)
      "sr": 0.25,                      # sample rate in (0, 1] (optional, default: collector's)
      "nt": "navigate",                # navigation type of the page (web-vitals vocabulary)
      "conn": {"type": "4g", "rtt": 50, "downlink": 9.5},   # navigator.connection (optional)
      "items": [ … ]                   # at least one; the collector bounds the count
    }

Every item has ``type`` and optionally ``ts`` (epoch ms; default the batch ``ts``):

- ``{"type": "page_view" | "soft_navigation", "ts", "url"?, "pid"?, "nt"?,
  "vitals": {"lcp", "inp", "cls", "fcp", "ttfb"}?,
  "nav": {"redirect", "dns", "connect", "tls", "request", "response", "dom_interactive",
  "dom_content_loaded", "load_event", "duration"}?,
  "res": [{"host", "n", "fail", "dur", "max", "bytes"}]?}`` — a soft navigation carries its
  own ``url`` and ``pid`` (new page id); ``nav`` values are ms from navigation start (phases
  are durations); ``res`` is resource timing already grouped per host by the agent: request
  count, failed count, total and max duration (ms), transfer bytes.
- ``{"type": "web_vital", "name": "LCP"|"INP"|"CLS"|"FCP"|"TTFB", "value", "id"?}`` — a vital
  that settled after the page view was sent (``id`` is the web-vitals metric id).
- ``{"type": "error", "message", "errType"?, "stack"?, "source"?, "line"?, "col"?, "count"?}``
- ``{"type": "api_error", "url", "method"?, "status", "dur"?}`` — a failed fetch/XHR (status
  >= 400, or 0 for a network failure).
- ``{"type": "step", "name": "checkout:payment"}`` — a journey step marker.
- ``{"type": "conversion", "value": 129.9, "currency": "EUR", "name"?}`` — a business action.

``web_vital``, ``error``, ``api_error`` and ``conversion`` items may carry ``"step"``: the
page's last step marker when the item was recorded (the agent adds it), so a payment call
failing after ``journeylens.step("checkout:payment")`` lands on that step, not on the step
of the page's URL. For a conversion it wins over ``name``.

:class:`BeaconBatch` is the same schema as pydantic models (for docs, JSON Schema and tests);
:func:`parse` does not run it per item, it checks each item by hand for speed. A bad envelope
(not JSON, wrong version, missing ``sid``/``pid``/``url``/``items``) is a :class:`MalformedBody`;
a bad item is :class:`Rejected` and the other items still land. Item times are clamped to
[received_at − 24 h, received_at + 5 min]. Event ids hash (app, session, page, item type, item
time and the item's identifying value), so a replayed batch gives the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from hashlib import blake2b
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from journeylens.collector.formats import _common as c
from journeylens.collector.formats.base import (
    MalformedBody,
    ParseResult,
    Rejected,
    RequestMeta,
)
from journeylens.contracts.common import WebVitals
from journeylens.contracts.rum_beacons_v1 import (
    DependencyTiming,
    EventKind,
    NavigationTiming,
    RumEvent,
    SourceFormat,
)

SOURCE = SourceFormat.JOURNEYLENS

# --------------------------------------------------------------------------- schema (docs)

Ms = Annotated[float, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Connection(_Model):
    type: str | None = None
    rtt: Ms | None = None
    downlink: Ms | None = None


class Vitals(_Model):
    lcp: Ms | None = None
    inp: Ms | None = None
    cls: Ms | None = None
    fcp: Ms | None = None
    ttfb: Ms | None = None


class Nav(_Model):
    redirect: Ms | None = None
    dns: Ms | None = None
    connect: Ms | None = None
    tls: Ms | None = None
    request: Ms | None = None
    response: Ms | None = None
    dom_interactive: Ms | None = None
    dom_content_loaded: Ms | None = None
    load_event: Ms | None = None
    duration: Ms | None = None


class HostTiming(_Model):
    host: str
    n: int = Field(ge=1)
    fail: int = Field(default=0, ge=0)
    dur: Ms = 0.0
    max: Ms | None = None
    bytes: int = Field(default=0, ge=0)


class ViewItem(_Model):
    type: Literal["page_view", "soft_navigation"]
    ts: Ms | None = None
    url: str | None = None
    pid: str | None = None
    nt: str | None = None
    vitals: Vitals | None = None
    nav: Nav | None = None
    res: list[HostTiming] = Field(default_factory=list)


class WebVitalItem(_Model):
    type: Literal["web_vital"]
    ts: Ms | None = None
    name: Literal["LCP", "INP", "CLS", "FCP", "TTFB"]
    value: Ms
    id: str | None = None
    step: str | None = None


class ErrorItem(_Model):
    type: Literal["error"]
    ts: Ms | None = None
    message: str
    errType: str | None = None  # noqa: N815 - wire name
    stack: str | None = None
    source: str | None = None
    line: int | None = None
    col: int | None = None
    count: int = Field(default=1, ge=1)
    step: str | None = None


class ApiErrorItem(_Model):
    type: Literal["api_error"]
    ts: Ms | None = None
    url: str
    method: str = "GET"
    status: int = Field(ge=0, le=999)
    dur: Ms | None = None
    step: str | None = None


class StepItem(_Model):
    type: Literal["step"]
    ts: Ms | None = None
    name: str = Field(min_length=1)


class ConversionItem(_Model):
    type: Literal["conversion"]
    ts: Ms | None = None
    value: Ms
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    name: str | None = None
    step: str | None = None


BeaconItem = Annotated[
    ViewItem | WebVitalItem | ErrorItem | ApiErrorItem | StepItem | ConversionItem,
    Field(discriminator="type"),
]


class BeaconBatch(_Model):
    """The JourneyLens beacon (see the module docstring)."""

    v: Literal[1]
    app: str | None = None
    sid: str = Field(min_length=1, max_length=256)
    pid: str = Field(min_length=1, max_length=256)
    url: str = Field(min_length=1)
    ts: Ms | None = None
    sr: float | None = Field(default=None, gt=0, le=1)
    nt: str | None = None
    conn: Connection | None = None
    items: list[BeaconItem] = Field(min_length=1)


# --------------------------------------------------------------------------- parser


class _BadItem(ValueError):
    pass


class _Batch:
    """The envelope, checked once per request, and what its events share."""

    __slots__ = (
        "sid", "pid", "url", "ts", "nt", "meta", "events", "id_prefix", "_raw_ts", "_when",
        "_id_ts", "_id_ts_text",
    )  # fmt: skip

    def __init__(self, doc: Mapping[str, Any], meta: RequestMeta) -> None:
        if doc.get("v") != 1:
            raise MalformedBody("unsupported beacon version: 'v' must be 1")
        sid, pid, url = c.text(doc.get("sid")), c.text(doc.get("pid")), c.url_text(doc.get("url"))
        if sid is None or pid is None or url is None:
            raise MalformedBody("beacon needs non-empty string 'sid', 'pid' and 'url'")
        self.sid, self.pid, self.url = sid, pid, url
        self.ts = c.from_epoch_ms(doc.get("ts"))
        self.nt = c.text(doc.get("nt"), 32) or "navigate"
        conn = doc.get("conn")
        self.meta = meta
        self.events = c.EventTemplate(
            source=SOURCE,
            meta=meta,
            session_id=sid,
            page_id=pid,
            url=url,
            navigation_type=self.nt,
            context=(
                c.connection(conn.get("type"), conn.get("rtt"), conn.get("downlink"))
                if isinstance(conn, dict)
                else c.connection()
            ),
            rate=c.sample_rate(doc.get("sr"), c.sample_rate(meta.sample_rate, 1.0)),
        )
        # items usually repeat the envelope's ts: its event time is the first one `when` needs
        self._raw_ts: object = doc.get("ts") if self.ts is not None else None
        self._when = c.event_time(self.ts, meta)
        self.id_prefix = _SEP.join((SOURCE, meta.app, sid, ""))
        self._id_ts: object = None
        self._id_ts_text = ""

    def item_id(self, pid: str, kind: EventKind, ts: object, key: object) -> str:
        """``stable_id(SOURCE, app, sid, pid, kind, c.number(ts), key)``, the shared leading
        parts joined once per request."""
        if type(ts) is float and ts == self._id_ts and ts > 0:  # items often share a time
            ts_text = self._id_ts_text
        else:
            number = c.number(ts)
            ts_text = "" if number is None else repr(number)
            self._id_ts, self._id_ts_text = ts, ts_text
        text = _SEP.join((pid, kind, ts_text, "" if key is None else str(key)))
        return blake2b((self.id_prefix + text).encode(), digest_size=16).hexdigest()

    def when(self, ts: object) -> datetime:
        """The clamped event time of an item's ``ts`` (items of a batch often share one)."""
        if ts is None:
            return c.event_time(self.ts, self.meta)
        if ts != self._raw_ts or type(ts) is not type(self._raw_ts):
            moment = c.from_epoch_ms(ts)
            if moment is None:
                raise _BadItem("'ts' must be epoch milliseconds")
            self._raw_ts, self._when = ts, c.event_time(moment, self.meta)
        return self._when


def _ms(value: object, key: str) -> float:
    """A non-negative number from JSON (a string, bool, NaN or infinity is an item error)."""
    kind = type(value)
    if kind is float or kind is int:
        number = float(value)  # type: ignore[arg-type]
        if 0 <= number < _INF:
            return number
    raise _BadItem(f"'{key}' must be a non-negative number")


def _opt_ms(item: Mapping[str, Any], key: str) -> float | None:
    """An optional non-negative number; present-but-invalid is an item error."""
    raw = item.get(key)
    return None if raw is None else _ms(raw, key)


def _req_text(item: Mapping[str, Any], key: str, limit: int = 256) -> str:
    value = c.text(item.get(key), limit)
    if value is None:
        raise _BadItem(f"'{key}' must be a non-empty string")
    return value


def _opt_text(item: Mapping[str, Any], key: str, limit: int = 256) -> str | None:
    raw = item.get(key)
    if raw is None:
        return None
    value = c.text(raw, limit)
    if value is None:
        raise _BadItem(f"'{key}' must be a non-empty string")
    return value


def _count(value: object) -> int | None:
    """An integer count (JSON integers directly; other numbers through `c.integer`)."""
    if type(value) is int and -_MAX_INT <= value <= _MAX_INT:
        return value
    return c.integer(value)


_INF = float("inf")
_SEP = "\x1f"
_MAX_INT = 2**53
_NAV_KEYS = {
    "redirect": "redirect_ms",
    "dns": "dns_ms",
    "connect": "connect_ms",
    "tls": "tls_ms",
    "request": "request_ms",
    "response": "response_ms",
    "dom_interactive": "dom_interactive_ms",
    "dom_content_loaded": "dom_content_loaded_ms",
    "load_event": "load_event_ms",
    "duration": "duration_ms",
}
_VITAL_KEYS = {"lcp": "lcp_ms", "inp": "inp_ms", "cls": "cls", "fcp": "fcp_ms", "ttfb": "ttfb_ms"}


def _dependencies(raw: object) -> list[DependencyTiming]:
    """The agent's per-host resource timings (one entry per host: built directly)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _BadItem("'res' must be an array")
    hosts: list[str] = []
    timings: list[DependencyTiming] = []
    for entry in raw:
        host, n, fail, total, longest, size = _host_timing(entry)
        hosts.append(host)
        timings.append(c.dependency(host, n, fail, total, longest, size))
    if len(hosts) > 1:
        if len(set(hosts)) != len(hosts):
            return _grouped(raw)
        if hosts != sorted(hosts):
            timings = [timing for _, timing in sorted(zip(hosts, timings, strict=True), key=_first)]
    return timings


def _first(pair: tuple[str, DependencyTiming]) -> str:
    return pair[0]


def _grouped(raw: list[Any]) -> list[DependencyTiming]:
    """Entries naming a host more than once, summed per host."""
    groups = c.DependencyGroups()
    for entry in raw:
        host, n, fail, total, longest, size = _host_timing(entry)
        groups.add(
            host, requests=n, failures=fail, total_ms=total, max_ms=longest, transfer_bytes=size
        )
    return groups.result()


def _host_timing(entry: object) -> tuple[str, int, int, float, float, int]:
    """One checked ``res`` entry: (host, requests, failures, total ms, max ms, bytes)."""
    if not isinstance(entry, dict):
        raise _BadItem("'res' entries must be objects")
    host = entry.get("host")
    if type(host) is not str or not host:
        raise _BadItem("'host' must be a non-empty string")
    n, fail, size = entry.get("n"), entry.get("fail", 0), entry.get("bytes", 0)
    if not (
        type(n) is int
        and type(fail) is int
        and type(size) is int
        and 0 <= fail <= n <= _MAX_INT
        and n >= 1
        and 0 <= size <= _MAX_INT
    ):
        n, fail, size = _count(n), _count(fail), _count(size)
        if n is None or n < 1 or fail is None or not 0 <= fail <= n or size is None or size < 0:
            raise _BadItem("'res' entry needs n >= 1, 0 <= fail <= n, bytes >= 0")
    total = entry.get("dur")
    if not (type(total) is float and 0.0 < total < _INF):
        total = (0.0 if total is None else _ms(total, "dur")) or 0.0
    longest = entry.get("max")
    if longest is None:
        longest = total / n
    elif not (type(longest) is float and 0.0 < longest < _INF):
        longest = _ms(longest, "max") or 0.0  # -0.0 as 0.0, as DependencyGroups gives
    return host[:256].lower(), n, fail, total, longest, size


def _view(item: Mapping[str, Any], batch: _Batch, when: datetime, kind: EventKind) -> RumEvent:
    vitals = _parts(item, "vitals", _VITAL_KEYS, WebVitals)
    nav = _parts(item, "nav", _NAV_KEYS, NavigationTiming)
    url = c.url_text(item.get("url")) or batch.url
    pid = _opt_text(item, "pid") or batch.pid
    default_nt = "soft-navigation" if kind is EventKind.SOFT_NAVIGATION else batch.nt
    return batch.events.view(
        batch.item_id(pid, kind, item.get("ts"), url),
        kind,
        when,
        vitals=vitals if vitals is not None else c.construct(WebVitals),
        dependencies=_dependencies(item.get("res")),
        page_id=pid,
        url=url,
        navigation_type=_opt_text(item, "nt", 32) or default_nt,
        navigation=nav,
    )


_Part = TypeVar("_Part", WebVitals, NavigationTiming)


def _parts(
    item: Mapping[str, Any], key: str, names: Mapping[str, str], model: type[_Part]
) -> _Part | None:
    """``construct(model, **fields)`` of the known numbers of the object ``item[key]`` under
    their contract field names, or ``None`` when it has none."""
    raw = item.get(key)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _BadItem(f"'{key}' must be an object")
    fields = c.defaults(model)
    given: set[str] = set()
    for name, value in raw.items():
        field = names.get(name)
        if field is not None and value is not None:
            if type(value) is float and 0.0 <= value < _INF:
                fields[field] = value
            else:
                fields[field] = _ms(value, name)
            given.add(field)
    return c.instantiate(model, fields, given) if given else None


def _event(
    batch: _Batch,
    item: Mapping[str, Any],
    when: datetime,
    kind: EventKind,
    key: object,
    **fields: Any,
) -> RumEvent:
    if kind is not EventKind.STEP and item.get("step") is not None:
        fields["step_event"] = _req_text(item, "step")  # the page's last step marker
    return batch.events.event(
        batch.item_id(batch.pid, kind, item.get("ts"), key),
        kind,
        when,
        **fields,
    )


def _page_view(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    return _view(item, batch, when, EventKind.PAGE_VIEW)


def _soft_navigation(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    return _view(item, batch, when, EventKind.SOFT_NAVIGATION)


def _web_vital(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    name = item.get("name")
    if not isinstance(name, str) or name not in c.VITAL_FIELDS:
        raise _BadItem("'name' must be one of LCP, INP, CLS, FCP, TTFB")
    value = _opt_ms(item, "value")
    if value is None:
        raise _BadItem("'value' must be a non-negative number")
    metric_id = _opt_text(item, "id")
    return _event(
        batch,
        item,
        when,
        EventKind.WEB_VITAL,
        (name, metric_id, value),
        vitals=c.vital(name, value),
    )


def _error(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    message = _req_text(item, "message", 2048)
    count = c.integer(item.get("count", 1))
    if count is None or count < 1:
        raise _BadItem("'count' must be an integer >= 1")
    error = c.js_error(
        message,
        type_=_opt_text(item, "errType"),
        source=_opt_text(item, "source", 8192),
        line=c.integer(item.get("line")),
        column=c.integer(item.get("col")),
        stack=_opt_text(item, "stack", 8192),
        count=count,
    )
    return _event(
        batch, item, when, EventKind.ERROR, (message, error.source, error.line), errors=[error]
    )


def _api_error(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    url = _req_text(item, "url", 8192)
    status = c.integer(item.get("status"))
    if status is None or isinstance(item.get("status"), str):
        raise _BadItem("'status' must be an integer")
    method = _opt_text(item, "method", 16) or "GET"
    failure = c.api_error(url, method, status, _opt_ms(item, "dur"))
    if failure is None:
        raise _BadItem("'status' must be within 0..999")
    return _event(batch, item, when, EventKind.ERROR, (method, url, status), api_errors=[failure])


def _step(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    name = _req_text(item, "name")
    return _event(batch, item, when, EventKind.STEP, name, step_event=name)


def _conversion(item: Mapping[str, Any], batch: _Batch, when: datetime) -> RumEvent:
    value = _opt_ms(item, "value")
    if value is None:
        raise _BadItem("'value' must be a non-negative number")
    currency = _opt_text(item, "currency", 8)
    if currency is not None and (len(currency) != 3 or not currency.isalpha()):
        raise _BadItem("'currency' must be an ISO 4217 code")
    name = _opt_text(item, "name")
    return _event(
        batch,
        item,
        when,
        EventKind.CONVERSION,
        (name, value, currency),
        conversion_value=value,
        currency=currency.upper() if currency else None,
        step_event=name,
    )


_ITEMS: dict[str, Callable[[Mapping[str, Any], _Batch, datetime], RumEvent]] = {
    "page_view": _page_view,
    "soft_navigation": _soft_navigation,
    "web_vital": _web_vital,
    "error": _error,
    "api_error": _api_error,
    "step": _step,
    "conversion": _conversion,
}


def parse(body: bytes, meta: RequestMeta) -> ParseResult:
    """Parse one JourneyLens beacon batch (see the module docstring for the format)."""
    doc = c.load_json(body)
    if not isinstance(doc, dict):
        raise MalformedBody("beacon must be a JSON object")
    batch = _Batch(doc, meta)
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        raise MalformedBody("beacon needs a non-empty 'items' array")
    result = ParseResult()
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise _BadItem("item must be an object")
            kind = item.get("type")
            handler = _ITEMS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise _BadItem(f"unknown item type {str(item.get('type'))[:40]!r}")
            result.events.append(handler(item, batch, batch.when(item.get("ts"))))
        except _BadItem as exc:
            result.rejected.append(Rejected(str(exc), c.dump_item(item), index))
    return result
