"""Window aggregation of RUM events and probe results per journey × step × window × segment.

Aggregators follow the quix-streams shape: ``initialize() -> state``, ``add(state, item)``,
``merge(state, other)``, ``result(state, …) -> dict``; states are small slotted objects with
``to_state()`` / ``from_state()`` (JSON-able) so a window can be rebuilt from a changelog and
merged across batches and workers.

The hot path (`pre_aggregate_rum`) works on the plain dicts orjson decodes from
``rum.beacons.v1`` and pre-aggregates a whole batch: per event it computes each sketch bucket
index once and appends it to plain int lists of the event's four segment rows (country, device
class, browser, connection type); at the end of the batch the lists are counted in C
(``Counter``), which gives the sketch buckets directly. The ``all`` row of a step is the merge of
its device-class rows and the journey row the merge of its steps' ``all`` rows, so neither costs
anything per event. No pydantic and no per-event objects besides list entries.

Worker, per batch::

    wm = closer.watermark
    batch = pre_aggregate_rum(events, catalog, window_s=60, watermark=wm, grace_s=30)
    merge_into(window_states, batch)
    closer.observe(batch.max_event_ts, batch.windows)
    for start in closer.pop_closed():
        rows = finalize_window(take_window(window_states, start), catalog)

Rows are dicts shaped exactly like ``experience_aggregates_v1.JourneyAggregate`` JSON.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlsplit

from journeylens.contracts.catalog import Thresholds
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.domain.catalog_view import CatalogView
from journeylens.domain.health import HealthPolicy, assess
from journeylens.domain.sketch import (
    DEFAULT_RELATIVE_ACCURACY,
    DEFAULT_SESSION_CAP,
    MIN_INDEXABLE,
    Bins,
    QuantileSketch,
    SessionSet,
)
from journeylens.domain.windows import (
    DEFAULT_GRACE_S,
    DEFAULT_WINDOW_S,
    epoch_seconds,
    is_closed,
    iso_utc,
    window_start,
)

_rumscan: ModuleType | None
try:
    from journeylens.domain import _rumscan
except ImportError:  # not compiled where it was installed (no C compiler): Python does it all
    _rumscan = None

NATIVE_SCAN: Final = _rumscan is not None
"""Whether `pre_aggregate_rum_raw` has its compiled scan (``journeylens.domain._rumscan``)."""

Key = tuple[str, str, int, str, str]
"""(journey, step, window_start epoch s, segment dimension, segment value)."""

ALL: Final = "all"
OTHER: Final = "other"
SEGMENT_DIMENSIONS: Final = ("country", "device_class", "browser", "connection_type")
DIMENSION_ORDER: Final = {ALL: 0, **{d: i + 1 for i, d in enumerate(SEGMENT_DIMENSIONS)}}
VIEW_KINDS: Final = frozenset({"page_view", "soft_navigation"})
VITALS: Final = ("lcp_ms", "inp_ms", "cls", "fcp_ms", "ttfb_ms")
PHASES: Final = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms")
QUANTILES: Final = (0.5, 0.75, 0.95)
DEFAULT_TOP_N: Final = 8
ERROR_PAGE_CAP: Final = 4096
_EMPTY: Final[Mapping[str, Any]] = {}


# --------------------------------------------------------------------------------------------
# RUM


class DependencyState:
    """Requests to one host seen by pages of one row."""

    __slots__ = ("provider", "requests", "failures", "network_errors", "page_mean_ms")

    def __init__(self, provider: str | None = None, accuracy: float = DEFAULT_RELATIVE_ACCURACY):
        self.provider = provider
        self.requests = 0
        self.failures = 0
        self.network_errors = 0
        self.page_mean_ms = QuantileSketch(accuracy)
        """Per page: total_duration_ms / requests."""

    def merge(self, other: DependencyState) -> None:
        if self.provider is None:
            self.provider = other.provider
        self.requests += other.requests
        self.failures += other.failures
        self.network_errors += other.network_errors
        self.page_mean_ms.merge(other.page_mean_ms)

    def to_state(self, canonical: bool = True) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "requests": self.requests,
            "failures": self.failures,
            "network_errors": self.network_errors,
            "page_mean_ms": self.page_mean_ms.to_state(canonical),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DependencyState:
        dep = cls(state.get("provider"))
        dep.requests = int(state["requests"])
        dep.failures = int(state["failures"])
        dep.network_errors = int(state.get("network_errors", 0))
        dep.page_mean_ms = QuantileSketch.from_state(state["page_mean_ms"])
        return dep


_RUM_COUNTERS: Final = (
    "views_w",
    "views",
    "js_errors",
    "api_errors",
    "error_pages_overflow",
    "satisfied",
    "tolerating",
    "frustrated",
    "conversions_w",
    "conversion_value_w",
    "late_events",
    "network_errors",
)
_RUM_SKETCHES: Final = (*VITALS, "duration_ms")


class RumState:
    """Mergeable RUM state of one row (or one batch cell)."""

    __slots__ = (
        *_RUM_COUNTERS,
        *_RUM_SKETCHES,
        "sessions",
        "error_pages",
        "deps",
    )

    def __init__(
        self,
        accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        session_cap: int = DEFAULT_SESSION_CAP,
    ) -> None:
        self.views_w = 0.0
        """Sample-rate-weighted views (sum of 1 / sample_rate)."""
        self.views = 0
        self.js_errors = 0
        self.api_errors = 0
        self.error_pages_overflow = 0
        self.satisfied = 0
        self.tolerating = 0
        self.frustrated = 0
        self.conversions_w = 0.0
        self.conversion_value_w = 0.0
        self.late_events = 0
        self.network_errors = 0
        self.lcp_ms = QuantileSketch(accuracy)
        self.inp_ms = QuantileSketch(accuracy)
        self.cls = QuantileSketch(accuracy)
        self.fcp_ms = QuantileSketch(accuracy)
        self.ttfb_ms = QuantileSketch(accuracy)
        self.duration_ms = QuantileSketch(accuracy)
        self.sessions = SessionSet(session_cap)
        self.error_pages: set[str] = set()
        """Page ids with a JS/API error (deduplicated up to ERROR_PAGE_CAP, then counted)."""
        self.deps: dict[str, DependencyState] = {}

    @property
    def views_with_error(self) -> int:
        return len(self.error_pages) + self.error_pages_overflow

    def merge(self, other: RumState) -> RumState:
        self.views_w += other.views_w
        self.views += other.views
        self.js_errors += other.js_errors
        self.api_errors += other.api_errors
        self.error_pages_overflow += other.error_pages_overflow
        self.satisfied += other.satisfied
        self.tolerating += other.tolerating
        self.frustrated += other.frustrated
        self.conversions_w += other.conversions_w
        self.conversion_value_w += other.conversion_value_w
        self.late_events += other.late_events
        self.network_errors += other.network_errors
        self.lcp_ms.merge(other.lcp_ms)
        self.inp_ms.merge(other.inp_ms)
        self.cls.merge(other.cls)
        self.fcp_ms.merge(other.fcp_ms)
        self.ttfb_ms.merge(other.ttfb_ms)
        self.duration_ms.merge(other.duration_ms)
        self.sessions.merge(other.sessions)
        if other.error_pages:
            self.error_pages |= other.error_pages
            _cap_error_pages(self)
        for host, dep in other.deps.items():
            mine = self.deps.get(host)
            if mine is None:
                mine = self.deps[host] = DependencyState(
                    dep.provider, dep.page_mean_ms.relative_accuracy
                )
            mine.merge(dep)
        return self

    def to_state(self, canonical: bool = True) -> dict[str, Any]:
        """The state as plain data; ``canonical`` sorts every set and map (equal states give
        equal output), otherwise they keep their own order (cheaper: the worker's changelog,
        decoded into the same state)."""
        state: dict[str, Any] = {name: getattr(self, name) for name in _RUM_COUNTERS}
        for name in _RUM_SKETCHES:
            state[name] = getattr(self, name).to_state(canonical)
        state["sessions"] = self.sessions.to_state(canonical)
        state["error_pages"] = sorted(self.error_pages) if canonical else list(self.error_pages)
        hosts = sorted(self.deps) if canonical else self.deps
        state["deps"] = {host: self.deps[host].to_state(canonical) for host in hosts}
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RumState:
        rum = cls()
        for name in _RUM_COUNTERS:
            setattr(rum, name, state[name])
        for name in _RUM_SKETCHES:
            setattr(rum, name, QuantileSketch.from_state(state[name]))
        rum.sessions = SessionSet.from_state(state["sessions"])
        rum.error_pages = set(state.get("error_pages", []))
        rum.deps = {h: DependencyState.from_state(d) for h, d in state.get("deps", {}).items()}
        return rum


def _cap_error_pages(rum: RumState) -> None:
    extra = len(rum.error_pages) - ERROR_PAGE_CAP
    if extra > 0:
        for page in sorted(rum.error_pages)[ERROR_PAGE_CAP:]:
            rum.error_pages.discard(page)
        rum.error_pages_overflow += extra


class RumAggregator:
    """Aggregates normalized RUM event dicts (``rum.beacons.v1`` JSON) of one row."""

    def __init__(
        self,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        session_cap: int = DEFAULT_SESSION_CAP,
    ) -> None:
        self.relative_accuracy = relative_accuracy
        self.session_cap = session_cap

    def initialize(self) -> RumState:
        return RumState(self.relative_accuracy, self.session_cap)

    def add(
        self,
        state: RumState,
        event: Mapping[str, Any],
        apdex_t_ms: float,
        *,
        dependencies: bool = True,
    ) -> None:
        """Add one non-probe event. Views and conversions are weighted by ``1 / sample_rate``.

        The reference path (one event, one row); `pre_aggregate_rum` computes the same states
        per batch, faster. ``dependencies=False`` leaves dependency stats out (segment rows).
        """
        sid = event.get("session_id")
        if sid:
            state.sessions.ids.add(sid)
        vitals = event.get("vitals") or _EMPTY
        lcp = vitals.get("lcp_ms")
        for name in VITALS:
            value = vitals.get(name)
            if value is not None:
                getattr(state, name).add(value)
        has_error = add_rare(state, event)
        if dependencies:
            add_dependencies(state.deps, event, self.relative_accuracy)
        if event.get("kind") in VIEW_KINDS:
            state.views_w += 1.0 / (event.get("sample_rate") or 1.0)
            state.views += 1
            nav = event.get("navigation")
            measure = nav.get("duration_ms") if nav else None
            if measure is not None:
                state.duration_ms.add(measure)
            else:
                measure = lcp
            if has_error:
                state.frustrated += 1
            elif measure is not None:
                if measure <= apdex_t_ms:
                    state.satisfied += 1
                elif measure <= 4.0 * apdex_t_ms:
                    state.tolerating += 1
                else:
                    state.frustrated += 1

    def merge(self, state: RumState, other: RumState) -> RumState:
        return state.merge(other)

    def result(self, state: RumState | None, thresholds: Thresholds) -> dict[str, Any]:
        """The ``RumStats`` JSON of a row."""
        if state is None:
            state = self.initialize()
        views = state.views
        with_error = min(state.views_with_error, views) if views else 0
        apdex_n = state.satisfied + state.tolerating + state.frustrated
        return {
            "page_views": round(state.views_w),
            "sampled_views": views,
            "sessions": state.sessions.estimate(),
            "lcp_ms": quantiles_json(state.lcp_ms),
            "inp_ms": quantiles_json(state.inp_ms),
            "cls": quantiles_json(state.cls, digits=4),
            "fcp_ms": quantiles_json(state.fcp_ms),
            "ttfb_ms": quantiles_json(state.ttfb_ms),
            "duration_ms": quantiles_json(state.duration_ms),
            "js_errors": state.js_errors,
            "api_errors": state.api_errors,
            "views_with_error": state.views_with_error,
            "error_rate": round(with_error / views, 6) if views else 0.0,
            "apdex": (
                round((state.satisfied + state.tolerating / 2) / apdex_n, 6) if apdex_n else None
            ),
            "apdex_t_ms": float(thresholds.apdex_t_ms),
            "satisfied": state.satisfied,
            "tolerating": state.tolerating,
            "frustrated": state.frustrated,
            "conversions": round(state.conversions_w),
            "conversion_value": round(state.conversion_value_w, 4),
            "late_events": state.late_events,
            "dependencies": [
                _dependency_json(host, state.deps[host]) for host in sorted(state.deps)
            ],
        }


_NUMBER: Final = (int, float)
_TEXT: Final = (str,)
_INTEGER: Final = (int,)
_WANTED: Final[dict[tuple[type, ...], str]] = {
    _NUMBER: "a number",
    _TEXT: "a string",
    _INTEGER: "an integer",
}


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    return value is None or (isinstance(value, types) and type(value) is not bool)


def rum_problem(event: Mapping[str, Any]) -> str | None:
    """What makes a decoded RUM message unfit for aggregation (a field of the wrong type, a
    timestamp that is no time), naming the field; None when aggregation can read it.

    Only the fields aggregation reads are checked, with the types ``rum.beacons.v1`` gives
    them (or null). The worker dead-letters such a message instead of failing its batch.
    """
    try:
        epoch_seconds(event.get("timestamp"))
    except (TypeError, ValueError, OverflowError):
        return f"timestamp: not a time: {event.get('timestamp')!r:.60}"
    for name in ("event_id", "journey", "step", "session_id", "kind", "page_id", "url"):
        if not _typed(event.get(name), _TEXT):
            return f"{name}: not a string"
    for name in ("sample_rate", "conversion_value"):
        if not _typed(event.get(name), _NUMBER):
            return f"{name}: not a number"
    synthetic = event.get("synthetic")
    if synthetic is not None and type(synthetic) is not bool:
        return "synthetic: not a boolean"
    objects: tuple[tuple[str, tuple[str, ...], tuple[type, ...]], ...] = (
        ("vitals", VITALS, _NUMBER),
        ("navigation", ("duration_ms",), _NUMBER),
        ("context", SEGMENT_DIMENSIONS, _TEXT),
    )
    for part, names, types in objects:
        found = event.get(part)
        if found is None:
            continue
        if not isinstance(found, dict):
            return f"{part}: not an object"
        for name in names:
            if not _typed(found.get(name), types):
                return f"{part}.{name}: not {_WANTED[types]}"
    parts: tuple[tuple[str, tuple[tuple[str, tuple[type, ...]], ...]], ...] = (
        ("errors", (("count", _INTEGER),)),
        ("api_errors", ()),
        (
            "dependencies",
            (
                ("host", _TEXT),
                ("provider", _TEXT),
                ("requests", _INTEGER),
                ("failures", _INTEGER),
                ("total_duration_ms", _NUMBER),
            ),
        ),
    )
    for part, fields in parts:
        found = event.get(part)
        if found is None:
            continue
        if not isinstance(found, list):
            return f"{part}: not an array"
        for item in found:
            if not isinstance(item, dict):
                return f"{part}: an item is not an object"
            for name, wanted in fields:
                if not _typed(item.get(name), wanted):
                    return f"{part}[].{name}: not {_WANTED[wanted]}"
    return None


def synthetic_problem(result: Mapping[str, Any]) -> str | None:
    """`rum_problem` for a decoded probe result (``synthetic.results.v1``): the fields the
    synthetic aggregation reads, with their contract types (or null)."""
    try:
        epoch_seconds(result.get("started_at"))
    except (TypeError, ValueError, OverflowError):
        return f"started_at: not a time: {result.get('started_at')!r:.60}"
    for name, wanted in (
        ("journey", _TEXT),
        ("status", _TEXT),
        ("failed_step", _TEXT),
        ("duration_ms", _NUMBER),
    ):
        if not _typed(result.get(name), wanted):
            return f"{name}: not {_WANTED[wanted]}"
    steps = result.get("steps")
    if steps is None:
        return None
    if not isinstance(steps, list):
        return "steps: not an array"
    for step in steps:
        if not isinstance(step, dict):
            return "steps: an item is not an object"
        for name, wanted in (("step", _TEXT), ("status", _TEXT), ("duration_ms", _NUMBER)):
            if not _typed(step.get(name), wanted):
                return f"steps[].{name}: not {_WANTED[wanted]}"
        timings = step.get("timings")
        if timings is not None:
            if not isinstance(timings, dict):
                return "steps[].timings: not an object"
            for name in PHASES:
                if not _typed(timings.get(name), _NUMBER):
                    return f"steps[].timings.{name}: not a number"
        assertions = step.get("failed_assertions")
        if assertions is not None and not (
            isinstance(assertions, list) and all(isinstance(a, dict) for a in assertions)
        ):
            return "steps[].failed_assertions: not an array of objects"
    return None


RARE_KINDS: Final = frozenset({"conversion", "network_error"})


def add_rare(state: RumState, event: Mapping[str, Any]) -> bool:
    """The infrequent parts of an event: JS/API errors, conversions, NEL reports.

    Returns whether the event carries a JS or API error.
    """
    has_error = False
    errors = event.get("errors")
    if errors:
        state.js_errors += sum(e.get("count") or 1 for e in errors)
        has_error = True
    api_errors = event.get("api_errors")
    if api_errors:
        state.api_errors += len(api_errors)
        has_error = True
    if has_error:
        page = event.get("page_id") or event.get("event_id") or ""
        if len(state.error_pages) < ERROR_PAGE_CAP:
            state.error_pages.add(page)
        elif page not in state.error_pages:
            state.error_pages_overflow += 1
    kind = event.get("kind")
    if kind == "conversion":
        weight = 1.0 / (event.get("sample_rate") or 1.0)
        state.conversions_w += weight
        state.conversion_value_w += (event.get("conversion_value") or 0.0) * weight
    elif kind == "network_error":
        state.network_errors += 1
    return has_error


def add_dependencies(
    deps: dict[str, DependencyState], event: Mapping[str, Any], accuracy: float
) -> None:
    """Per-host resource timings of one page, and NEL reports against their host."""
    timings = event.get("dependencies")
    if timings:
        for d in timings:
            host = d.get("host") or "unknown"
            dep = deps.get(host)
            if dep is None:
                dep = deps[host] = DependencyState(d.get("provider"), accuracy)
            elif dep.provider is None:
                dep.provider = d.get("provider")
            requests = d.get("requests") or 0
            dep.requests += requests
            dep.failures += d.get("failures") or 0
            if requests:
                dep.page_mean_ms.add((d.get("total_duration_ms") or 0.0) / requests)
    if event.get("kind") == "network_error":
        if timings:
            for d in timings:
                deps[d.get("host") or "unknown"].network_errors += 1
        else:
            host = _host_of(event.get("url") or "")
            dep = deps.get(host)
            if dep is None:
                dep = deps[host] = DependencyState(None, accuracy)
            dep.network_errors += 1


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).netloc or "unknown"
    except ValueError:
        return "unknown"


def _dependency_json(host: str, dep: DependencyState) -> dict[str, Any]:
    p75 = dep.page_mean_ms.quantile(0.75)
    return {
        "host": host,
        "provider": dep.provider,
        "requests": dep.requests,
        "failures": min(dep.failures, dep.requests),
        "failure_rate": round(min(dep.failures / dep.requests, 1.0), 6) if dep.requests else 0.0,
        "p75_ms": None if p75 is None else round(p75, 3),
        "network_errors": dep.network_errors,
    }


def quantiles_json(sketch: QuantileSketch, digits: int = 3) -> dict[str, Any]:
    """The ``Quantiles`` JSON (count, p50, p75, p95) of a sketch."""
    if not sketch.zero and not sketch.bins:  # most rows' probe sketches, many segments' INP
        return {"count": 0, "p50": None, "p75": None, "p95": None}
    p50, p75, p95 = sketch.quantiles(QUANTILES)
    return {
        "count": sketch.count,
        "p50": None if p50 is None else round(p50, digits),
        "p75": None if p75 is None else round(p75, digits),
        "p95": None if p95 is None else round(p95, digits),
    }


# --------------------------------------------------------------------------------------------
# Synthetic


class LocationState:
    __slots__ = ("runs", "failures", "duration_ms")

    def __init__(self, accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        self.runs = 0
        self.failures = 0
        self.duration_ms = QuantileSketch(accuracy)

    def merge(self, other: LocationState) -> None:
        self.runs += other.runs
        self.failures += other.failures
        self.duration_ms.merge(other.duration_ms)

    def to_state(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failures": self.failures,
            "duration_ms": self.duration_ms.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LocationState:
        loc = cls()
        loc.runs = int(state["runs"])
        loc.failures = int(state["failures"])
        loc.duration_ms = QuantileSketch.from_state(state["duration_ms"])
        return loc


_SYN_SKETCHES: Final = ("duration_ms", *PHASES)


class SyntheticState:
    """Mergeable probe state of one journey step (or the whole journey) in one window."""

    __slots__ = ("runs", "failures", *_SYN_SKETCHES, "locations", "reasons")

    def __init__(self, accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        self.runs = 0
        self.failures = 0
        self.duration_ms = QuantileSketch(accuracy)
        self.dns_ms = QuantileSketch(accuracy)
        self.connect_ms = QuantileSketch(accuracy)
        self.tls_ms = QuantileSketch(accuracy)
        self.ttfb_ms = QuantileSketch(accuracy)
        self.transfer_ms = QuantileSketch(accuracy)
        self.locations: dict[str, LocationState] = {}
        self.reasons: dict[str, int] = {}

    def location(self, name: str) -> LocationState:
        loc = self.locations.get(name)
        if loc is None:
            loc = self.locations[name] = LocationState(self.duration_ms.relative_accuracy)
        return loc

    def merge(self, other: SyntheticState) -> SyntheticState:
        self.runs += other.runs
        self.failures += other.failures
        for name in _SYN_SKETCHES:
            getattr(self, name).merge(getattr(other, name))
        for name, loc in other.locations.items():
            self.location(name).merge(loc)
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        return self

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"runs": self.runs, "failures": self.failures}
        for name in _SYN_SKETCHES:
            state[name] = getattr(self, name).to_state()
        state["locations"] = {n: self.locations[n].to_state() for n in sorted(self.locations)}
        state["reasons"] = dict(sorted(self.reasons.items()))
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SyntheticState:
        syn = cls()
        syn.runs = int(state["runs"])
        syn.failures = int(state["failures"])
        for name in _SYN_SKETCHES:
            setattr(syn, name, QuantileSketch.from_state(state[name]))
        syn.locations = {n: LocationState.from_state(s) for n, s in state["locations"].items()}
        syn.reasons = {str(r): int(n) for r, n in state["reasons"].items()}
        return syn


MAX_REASON_LEN: Final = 200


def step_failure_reason(step: Mapping[str, Any]) -> str:
    """Why a probe step failed, in a few words (first failed assertion, else the error)."""
    for assertion in step.get("failed_assertions") or ():
        text = assertion.get("message") or assertion.get("assertion") or "assertion failed"
        return str(text)[:MAX_REASON_LEN]
    if step.get("error"):
        return str(step["error"])[:MAX_REASON_LEN]
    if step.get("http_status") is not None:
        return f"http status {step['http_status']}"
    return "failed"


class SyntheticAggregator:
    """Aggregates ``synthetic.results.v1`` dicts: one step result or one whole run at a time."""

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        self.relative_accuracy = relative_accuracy

    def initialize(self) -> SyntheticState:
        return SyntheticState(self.relative_accuracy)

    def add_step(self, state: SyntheticState, step: Mapping[str, Any], location: str) -> None:
        failed = step.get("status") == "failed"
        duration = float(step.get("duration_ms") or 0.0)
        state.runs += 1
        state.duration_ms.add(duration)
        timings = step.get("timings") or _EMPTY
        for phase in PHASES:
            value = timings.get(phase)
            if value is not None:
                getattr(state, phase).add(value)
        loc = state.location(location)
        loc.runs += 1
        loc.duration_ms.add(duration)
        if failed:
            state.failures += 1
            loc.failures += 1
            reason = step_failure_reason(step)
            state.reasons[reason] = state.reasons.get(reason, 0) + 1

    def add_run(self, state: SyntheticState, result: Mapping[str, Any]) -> None:
        """Whole run (step ``_journey``): ``failed`` and ``error`` runs count as failures."""
        failed = result.get("status") != "passed"
        duration = float(result.get("duration_ms") or 0.0)
        location = str(result.get("location") or "unknown")
        state.runs += 1
        state.duration_ms.add(duration)
        loc = state.location(location)
        loc.runs += 1
        loc.duration_ms.add(duration)
        if failed:
            state.failures += 1
            loc.failures += 1
            reason = _run_failure_reason(result)
            state.reasons[reason] = state.reasons.get(reason, 0) + 1

    def merge(self, state: SyntheticState, other: SyntheticState) -> SyntheticState:
        return state.merge(other)

    def result(self, state: SyntheticState | None) -> dict[str, Any]:
        """The ``SyntheticStats`` JSON of a row."""
        if state is None:  # a row without probe runs (most rows): read, never changed
            state = _NO_RUNS
        out: dict[str, Any] = {
            "runs": state.runs,
            "failures": state.failures,
            "availability": _availability(state.runs, state.failures),
        }
        for name in _SYN_SKETCHES:
            out[name] = quantiles_json(getattr(state, name))
        out["locations"] = [
            {
                "location": name,
                "runs": loc.runs,
                "failures": loc.failures,
                "availability": _availability(loc.runs, loc.failures),
                "duration_ms_p95": _round(loc.duration_ms.quantile(0.95)),
            }
            for name, loc in sorted(state.locations.items())
        ]
        out["failed_assertions"] = dict(sorted(state.reasons.items()))
        return out


_NO_RUNS: Final = SyntheticState()


def _run_failure_reason(result: Mapping[str, Any]) -> str:
    failed_step = result.get("failed_step")
    for step in result.get("steps") or ():
        if step.get("status") == "failed" and (
            failed_step is None or step.get("step") == failed_step
        ):
            return f"{step.get('step')}: {step_failure_reason(step)}"
    error = result.get("error")
    prefix = f"{failed_step}: " if failed_step else ""
    return prefix + (str(error)[:MAX_REASON_LEN] if error else str(result.get("status")))


def _availability(runs: int, failures: int) -> float | None:
    return round((runs - failures) / runs, 6) if runs else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------------------------
# Rows and batches


class RowState:
    """State of one output row: its RUM side and its synthetic side (either may be absent)."""

    __slots__ = ("rum", "synthetic")

    def __init__(self, rum: RumState | None = None, synthetic: SyntheticState | None = None):
        self.rum = rum
        self.synthetic = synthetic

    def merge(self, other: RowState) -> RowState:
        if other.rum is not None:
            if self.rum is None:
                self.rum = RumState(other.rum.lcp_ms.relative_accuracy, other.rum.sessions.cap)
            self.rum.merge(other.rum)
        if other.synthetic is not None:
            if self.synthetic is None:
                self.synthetic = SyntheticState(other.synthetic.duration_ms.relative_accuracy)
            self.synthetic.merge(other.synthetic)
        return self

    def to_state(self, canonical: bool = True) -> dict[str, Any]:
        return {
            "rum": None if self.rum is None else self.rum.to_state(canonical),
            "synthetic": None if self.synthetic is None else self.synthetic.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RowState:
        rum = state.get("rum")
        syn = state.get("synthetic")
        return cls(
            None if rum is None else RumState.from_state(rum),
            None if syn is None else SyntheticState.from_state(syn),
        )


class BatchStates(dict[Key, RowState]):
    """Row states of one batch, plus what the worker needs to move the watermark."""

    def __init__(self) -> None:
        super().__init__()
        self.max_event_ts: int | None = None
        self.windows: set[int] = set()
        self.late_events = 0
        self.probe_events = 0
        """Probe traffic (``synthetic: true``) seen in the RUM batch and left out of the rows."""
        self.unmapped_events = 0
        """Events of a journey or step not in the catalog (stored raw, not aggregated)."""


def key_to_str(key: Key) -> str:
    """``journey|step|window_start ISO|dimension|value``: the deterministic ``aggregate_id``."""
    journey, step, start, dim, value = key
    return f"{journey}|{step}|{iso_utc(start)}|{dim}|{value}"


# The batch hot path appends one int per contribution to plain lists and counts them in C
# (``Counter``) per row at the end of the batch: a metric's list holds sketch bucket indexes, so
# its count *is* the sketch's buckets; the "marks" list holds Apdex classes and views per
# sample rate.
_ZERO: Final = -(1 << 40)
"""Bucket index standing for the sketch's zero bucket in a batch list."""
_SATISFIED: Final = 1
_TOLERATING: Final = 2
_FRUSTRATED: Final = 3
_VIEW: Final = 16
"""Views at sample rate ``k``: mark ``_VIEW + k`` (k indexes the batch's sample rates)."""
_BATCH_SKETCHES: Final = (*VITALS, "duration_ms")
_GROUP_DIMENSIONS: Final = ("device_class", "country", "browser", "connection_type")

# lcp, inp, cls, fcp, ttfb, duration buckets; marks; session ids; events with rare parts
Cell = tuple[
    list[int], list[int], list[int], list[int], list[int], list[int], list[int], set[str], list[Any]
]


def _new_cell() -> Cell:
    return ([], [], [], [], [], [], [], set(), [])


def pre_aggregate_rum(
    events: Iterable[Mapping[str, Any]],
    catalog: CatalogView,
    window_s: int = DEFAULT_WINDOW_S,
    watermark: float | None = None,
    *,
    grace_s: int = DEFAULT_GRACE_S,
    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
    session_cap: int = DEFAULT_SESSION_CAP,
) -> BatchStates:
    """Aggregate one batch of RUM event dicts into row states.

    Rows: every segment dimension of the step, plus the journey level (``_journey``, segment
    ``all`` only); dependency stats are on the ``all`` rows only. Probe traffic is counted
    (``probe_events``) and left out. An event whose window is closed at ``watermark``
    (``start + window_s + grace_s <= watermark``) is late: it is counted in the ``late_events``
    of its step's current window (the one holding the watermark) and in
    ``BatchStates.late_events``. Equivalent to `RumAggregator.add` per event and row.
    """
    out = BatchStates()
    journeys = catalog.journeys
    inv = 1.0 / math.log((1 + relative_accuracy) / (1 - relative_accuracy))
    log = math.log
    ceil = math.ceil
    lowest = MIN_INDEXABLE
    zero = _ZERO
    # (journey, step, window) → value → row accumulator, one dict per segment dimension
    groups: dict[tuple[str, str, int], tuple[dict[str, Cell], ...]] = {}
    deps_by_step: dict[tuple[str, str, int], dict[str, DependencyState]] = {}
    rates: dict[float, int] = {}
    late: dict[tuple[str, str, int], int] = {}
    late_start = window_start(watermark, window_s) if watermark is not None else 0
    closed_to = watermark - window_s - grace_s if watermark is not None else -math.inf
    max_ts = -1
    for ev in events:
        if ev.get("synthetic"):
            out.probe_events += 1
            continue
        journey = ev.get("journey")
        view = journeys.get(journey) if journey is not None else None
        step = ev.get("step")
        apdex_t = view.apdex_t_ms.get(step) if view is not None and step is not None else None
        if apdex_t is None or step == JOURNEY_LEVEL:
            out.unmapped_events += 1
            continue
        assert journey is not None and step is not None
        ts = epoch_seconds(ev["timestamp"])
        if ts > max_ts:
            max_ts = ts
        start = ts - ts % window_s
        if start <= closed_to:
            late_key = (journey, step, late_start)
            late[late_key] = late.get(late_key, 0) + 1
            continue
        group_key = (journey, step, start)
        group = groups.get(group_key)
        if group is None:
            group = groups[group_key] = ({}, {}, {}, {})
        by_device, by_country, by_browser, by_connection = group
        ctx = ev.get("context") or _EMPTY
        value = ctx.get("device_class") or "unknown"
        r0 = by_device.get(value)
        if r0 is None:
            r0 = by_device[value] = _new_cell()
        value = ctx.get("country") or "unknown"
        r1 = by_country.get(value)
        if r1 is None:
            r1 = by_country[value] = _new_cell()
        value = ctx.get("browser") or "unknown"
        r2 = by_browser.get(value)
        if r2 is None:
            r2 = by_browser[value] = _new_cell()
        value = ctx.get("connection_type") or "unknown"
        r3 = by_connection.get(value)
        if r3 is None:
            r3 = by_connection[value] = _new_cell()
        sid = ev.get("session_id")
        if sid:
            r0[7].add(sid)
            r1[7].add(sid)
            r2[7].add(sid)
            r3[7].add(sid)
        kind = ev.get("kind")
        lcp = None
        vitals = ev.get("vitals")
        if vitals:
            v = vitals.get("lcp_ms")
            if v is not None:
                lcp = v
                x = ceil(log(v) * inv) if v > lowest else zero
                r0[0].append(x)
                r1[0].append(x)
                r2[0].append(x)
                r3[0].append(x)
            v = vitals.get("inp_ms")
            if v is not None:
                x = ceil(log(v) * inv) if v > lowest else zero
                r0[1].append(x)
                r1[1].append(x)
                r2[1].append(x)
                r3[1].append(x)
            v = vitals.get("cls")
            if v is not None:
                x = ceil(log(v) * inv) if v > lowest else zero
                r0[2].append(x)
                r1[2].append(x)
                r2[2].append(x)
                r3[2].append(x)
            v = vitals.get("fcp_ms")
            if v is not None:
                x = ceil(log(v) * inv) if v > lowest else zero
                r0[3].append(x)
                r1[3].append(x)
                r2[3].append(x)
                r3[3].append(x)
            v = vitals.get("ttfb_ms")
            if v is not None:
                x = ceil(log(v) * inv) if v > lowest else zero
                r0[4].append(x)
                r1[4].append(x)
                r2[4].append(x)
                r3[4].append(x)
        has_error = bool(ev.get("errors") or ev.get("api_errors"))
        if has_error or kind in RARE_KINDS:
            r0[8].append(ev)
            r1[8].append(ev)
            r2[8].append(ev)
            r3[8].append(ev)
        if ev.get("dependencies") or kind == "network_error":
            step_key = (journey, step, start)
            deps = deps_by_step.get(step_key)
            if deps is None:
                deps = deps_by_step[step_key] = {}
            add_dependencies(deps, ev, relative_accuracy)
        if kind in VIEW_KINDS:
            rate = ev.get("sample_rate") or 1.0
            k = rates.get(rate)
            if k is None:
                k = rates[rate] = _VIEW + len(rates)
            nav = ev.get("navigation")
            measure = nav.get("duration_ms") if nav else None
            if measure is not None:
                x = ceil(log(measure) * inv) if measure > lowest else zero
                r0[5].append(x)
                r1[5].append(x)
                r2[5].append(x)
                r3[5].append(x)
            else:
                measure = lcp
            if has_error:
                a = _FRUSTRATED
            elif measure is None:
                a = 0
            elif measure <= apdex_t:
                a = _SATISFIED
            elif measure <= 4.0 * apdex_t:
                a = _TOLERATING
            else:
                a = _FRUSTRATED
            r0[6].append(k)
            r1[6].append(k)
            r2[6].append(k)
            r3[6].append(k)
            if a:
                r0[6].append(a)
                r1[6].append(a)
                r2[6].append(a)
                r3[6].append(a)
    if max_ts >= 0:
        out.max_event_ts = max_ts
    weights = {k: 1.0 / rate for rate, k in rates.items()}
    pending: dict[Key, RumState] = {}
    for (journey, step, start), group in groups.items():
        for dim, rows in zip(_GROUP_DIMENSIONS, group, strict=True):
            for value, acc in rows.items():
                pending[(journey, step, start, dim, value)] = _state_from_cell(
                    acc, weights, relative_accuracy, session_cap
                )
    _finish_rows(out, pending, deps_by_step, relative_accuracy, session_cap)
    _count_late(out, late, relative_accuracy, session_cap)
    out.windows.update(key[2] for key in out)
    return out


def _count_late(
    out: BatchStates,
    late: Mapping[tuple[str, str, int], int],
    accuracy: float,
    session_cap: int,
) -> None:
    """Late events go to the ``all`` row of their step's current window."""
    for (journey, step, start), n in sorted(late.items()):
        row = out.setdefault((journey, step, start, ALL, ALL), RowState())
        if row.rum is None:
            row.rum = RumState(accuracy, session_cap)
        row.rum.late_events += n
        out.late_events += n


def _finish_rows(
    out: BatchStates,
    pending: Mapping[Key, RumState],
    deps_by_step: Mapping[tuple[str, str, int], dict[str, DependencyState]],
    accuracy: float,
    session_cap: int,
) -> None:
    """Store the segment rows; derive the ``all`` rows (from the device rows, which partition
    the step) and the journey rows (from the ``all`` rows)."""
    step_rows: dict[tuple[str, str, int], RumState] = {}
    for key, state in pending.items():
        out[key] = RowState(state)
        if key[3] == "device_class":
            step_key = (key[0], key[1], key[2])
            whole = step_rows.get(step_key)
            if whole is None:
                whole = step_rows[step_key] = RumState(accuracy, session_cap)
            whole.merge(state)
    journey_rows: dict[tuple[str, int], RumState] = {}
    for (journey, step, start), whole in step_rows.items():
        whole.deps = deps_by_step.get((journey, step, start), {})
        out[(journey, step, start, ALL, ALL)] = RowState(whole)
        total = journey_rows.get((journey, start))
        if total is None:
            total = journey_rows[(journey, start)] = RumState(accuracy, session_cap)
        total.merge(whole)
    for (journey, start), total in journey_rows.items():
        out[(journey, JOURNEY_LEVEL, start, ALL, ALL)] = RowState(total)


def _state_from_cell(
    acc: Cell, weights: Mapping[int, float], accuracy: float, session_cap: int
) -> RumState:
    state = RumState(accuracy, session_cap)
    for name, buckets in zip(_BATCH_SKETCHES, acc[:6], strict=True):
        if buckets:
            counts = Counter(buckets)
            sketch: QuantileSketch = getattr(state, name)
            sketch.zero = counts.pop(_ZERO, 0)
            sketch.bins = Bins(counts)
    for mark, n in Counter(acc[6]).items():
        if mark >= _VIEW:
            state.views += n
            state.views_w += n * weights[mark]
        elif mark == _SATISFIED:
            state.satisfied += n
        elif mark == _TOLERATING:
            state.tolerating += n
        else:
            state.frustrated += n
    state.sessions.ids = acc[7]
    state.sessions.compact()
    for ev in acc[8]:
        add_rare(state, ev)
    return state


def pre_aggregate_rum_raw(
    values: Sequence[bytes],
    journey: str,
    catalog: CatalogView,
    window_s: int = DEFAULT_WINDOW_S,
    watermark: float | None = None,
    *,
    grace_s: int = DEFAULT_GRACE_S,
    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
    session_cap: int = DEFAULT_SESSION_CAP,
) -> tuple[BatchStates, list[int]]:
    """`pre_aggregate_rum` of one journey's raw messages (JSON bytes), without decoding them.

    The compiled scan reads each message for the fields aggregation needs and aggregates those
    it reads exactly as the Python path would. Returns their row states and the indexes of the
    messages it did not take: any of another journey, with a rare part (errors, API errors,
    conversions, network errors, probe traffic), escapes or non-ASCII text in a string, a
    field of an unexpected type, or not JSON. Decode those and aggregate them with
    `pre_aggregate_rum`; both results merge (`merge_into`) into what `pre_aggregate_rum` gives
    for all of them. Without the compiled module every index is returned.
    """
    view = catalog.journeys.get(journey)
    values = values if isinstance(values, list) else list(values)
    if _rumscan is None or view is None or not values:
        return BatchStates(), list(range(len(values)))
    closed_to = watermark - window_s - grace_s if watermark is not None else -math.inf
    inv = 1.0 / math.log((1 + relative_accuracy) / (1 - relative_accuracy))
    taken, cells, deps, late, max_ts, unmapped = _rumscan.scan(
        values, journey, view.apdex_t_ms, window_s, closed_to, inv, MIN_INDEXABLE, _ZERO,
        JOURNEY_LEVEL,
    )  # fmt: skip
    out = BatchStates()
    out.unmapped_events = unmapped
    if max_ts >= 0:
        out.max_event_ts = max_ts
    pending: dict[Key, RumState] = {}
    for step, start, dim, value, sketches, views, satisfied, tolerating, frustrated, ids in cells:
        state = RumState(relative_accuracy, session_cap)
        for name, (zero, bins) in zip(_BATCH_SKETCHES, sketches, strict=True):
            if zero or bins:
                sketch: QuantileSketch = getattr(state, name)
                sketch.zero = zero
                sketch.bins = bins
        for rate, n in views:  # in first-seen order, as _state_from_cell sums them
            state.views += n
            state.views_w += n * (1.0 / rate)
        state.satisfied = satisfied
        state.tolerating = tolerating
        state.frustrated = frustrated
        state.sessions.ids = ids
        state.sessions.compact()
        pending[(journey, step, start, _GROUP_DIMENSIONS[dim], value)] = state
    deps_by_step: dict[tuple[str, str, int], dict[str, DependencyState]] = {}
    for step, start, hosts in deps:
        found = deps_by_step[(journey, step, start)] = {}
        for host, provider, requests, failures, (zero, bins) in hosts:
            dep = found[host] = DependencyState(provider, relative_accuracy)
            dep.requests = requests
            dep.failures = failures
            dep.page_mean_ms.zero = zero
            dep.page_mean_ms.bins = bins
    _finish_rows(out, pending, deps_by_step, relative_accuracy, session_cap)
    if late:
        late_start = window_start(watermark, window_s) if watermark is not None else 0
        _count_late(
            out, {(journey, step, late_start): n for step, n in late.items()},
            relative_accuracy, session_cap,
        )  # fmt: skip
    out.windows.update(key[2] for key in out)
    return out, [i for i, took in enumerate(taken) if not took]


def pre_aggregate_synthetic(
    results: Iterable[Mapping[str, Any]],
    catalog: CatalogView,
    window_s: int = DEFAULT_WINDOW_S,
    watermark: float | None = None,
    *,
    grace_s: int = DEFAULT_GRACE_S,
    aggregator: SyntheticAggregator | None = None,
) -> BatchStates:
    """Aggregate one batch of probe-run dicts into rows (segment ``all``), windowed by run start.

    Each step result (not skipped) goes to its step's row, the whole run to ``_journey``.
    Late runs are counted in ``BatchStates.late_events`` only.
    """
    agg = aggregator or SyntheticAggregator()
    out = BatchStates()
    max_ts = -1
    for result in results:
        journey = result.get("journey")
        view = catalog.journeys.get(journey) if journey is not None else None
        if view is None or journey is None:
            out.unmapped_events += 1
            continue
        ts = epoch_seconds(result["started_at"])
        max_ts = max(max_ts, ts)
        start = ts - ts % window_s
        if is_closed(start, watermark, window_s, grace_s):
            out.late_events += 1
            continue
        location = str(result.get("location") or "unknown")
        for step in result.get("steps") or ():
            step_id = step.get("step")
            if step.get("status") == "skipped" or step_id not in view.apdex_t_ms:
                continue
            agg.add_step(_syn_row(out, agg, (journey, step_id, start, ALL, ALL)), step, location)
        agg.add_run(_syn_row(out, agg, (journey, JOURNEY_LEVEL, start, ALL, ALL)), result)
    if max_ts >= 0:
        out.max_event_ts = max_ts
    out.windows.update(key[2] for key in out)
    return out


def _syn_row(out: BatchStates, agg: SyntheticAggregator, key: Key) -> SyntheticState:
    row = out.get(key)
    if row is None:
        row = out[key] = RowState()
    if row.synthetic is None:
        row.synthetic = agg.initialize()
    return row.synthetic


def merge_into(states: MutableMapping[Key, RowState], batch: Mapping[Key, RowState]) -> None:
    """Merge a batch's row states into the window states (in place).

    The batch is consumed: its row objects may be moved into ``states``; do not reuse it.
    """
    for key, row in batch.items():
        mine = states.get(key)
        if mine is None:
            states[key] = row
        else:
            mine.merge(row)


def take_window(states: MutableMapping[Key, RowState], start: int) -> dict[Key, RowState]:
    """Remove and return every row state of the window starting at ``start``."""
    keys = [key for key in states if key[2] == start]
    return {key: states.pop(key) for key in keys}


# --------------------------------------------------------------------------------------------
# Window close


def fold_top_n(states: Mapping[Key, RowState], top_n: int = DEFAULT_TOP_N) -> dict[Key, RowState]:
    """Keep the top-N values of each segment dimension by sampled views; merge the rest into
    ``other``. Ties break by value name, so the result is deterministic. Input is not mutated."""
    out: dict[Key, RowState] = {}
    groups: dict[tuple[str, str, int, str], list[tuple[str, RowState]]] = {}
    for key, row in states.items():
        journey, step, start, dim, value = key
        if dim == ALL:
            out[key] = row
        else:
            groups.setdefault((journey, step, start, dim), []).append((value, row))
    for (journey, step, start, dim), members in groups.items():
        ranked = sorted((m for m in members if m[0] != OTHER), key=lambda m: (-_views(m[1]), m[0]))
        rest = ranked[top_n:] + [m for m in members if m[0] == OTHER]
        for value, row in ranked[:top_n]:
            out[(journey, step, start, dim, value)] = row
        if rest:
            other = RowState()
            for _, row in sorted(rest, key=lambda m: m[0]):
                other.merge(row)
            out[(journey, step, start, dim, OTHER)] = other
    return out


def _views(row: RowState) -> int:
    return 0 if row.rum is None else row.rum.views


def _empty_funnel() -> dict[str, Any]:
    return {"sessions_entered": 0, "sessions_completed": 0, "completion_rate": None}


def funnel_json(
    row: RowState, last_step_row: RowState | None, *, journey_level: bool
) -> dict[str, Any]:
    """``FunnelStats``: sessions of this row, and those of them that reached the last step.

    On the journey row, entered is every session that touched any step and completed is the
    sessions at the last step. Within one window only (a session spanning two windows counts
    in each).
    """
    if row.rum is None:
        return _empty_funnel()
    entered = row.rum.sessions.estimate()
    if last_step_row is None or last_step_row.rum is None:
        completed = 0
    elif journey_level:
        completed = last_step_row.rum.sessions.estimate()
    elif last_step_row is row:
        completed = entered
    else:
        completed = row.rum.sessions.intersection(last_step_row.rum.sessions)
    completed = min(completed, entered)
    return {
        "sessions_entered": entered,
        "sessions_completed": completed,
        "completion_rate": round(completed / entered, 6) if entered else None,
    }


def finalize(
    key: Key,
    state: RowState,
    thresholds: Thresholds,
    *,
    funnel: Mapping[str, Any] | None = None,
    policy: HealthPolicy | None = None,
    window_s: int = DEFAULT_WINDOW_S,
    rum: RumAggregator | None = None,
    synthetic: SyntheticAggregator | None = None,
) -> dict[str, Any]:
    """One ``JourneyAggregate`` JSON dict for a row, with its health status, scope and reasons."""
    journey, step, start, dim, value = key
    rum_agg = rum or RumAggregator()
    syn_agg = synthetic or SyntheticAggregator()
    row: dict[str, Any] = {
        "aggregate_id": key_to_str(key),
        "journey": journey,
        "step": step,
        "window_start": iso_utc(start),
        "window_end": iso_utc(start + window_s),
        "segment_dimension": dim,
        "segment_value": value,
        "rum": rum_agg.result(state.rum, thresholds),
        "synthetic": syn_agg.result(state.synthetic),
        "funnel": dict(funnel)
        if funnel is not None
        else funnel_json(state, None, journey_level=False),
        "status": "no_data",
        "scope": "none",
        "reasons": [],
        "sketch_relative_accuracy": rum_agg.relative_accuracy,
        "schema_version": 1,
    }
    health = assess(row, thresholds, policy)
    row["status"] = health.status
    row["scope"] = health.scope
    row["reasons"] = health.reasons
    return row


def finalize_window(
    states: Mapping[Key, RowState],
    catalog: CatalogView,
    *,
    top_n: int = DEFAULT_TOP_N,
    window_s: int = DEFAULT_WINDOW_S,
    policy: HealthPolicy | None = None,
) -> list[dict[str, Any]]:
    """All rows of one closed window (any number of windows works), sorted by key.

    Folds segments to top-N + other, computes funnels, and adds an empty (``no_data``) ``all``
    row for every catalog step of a journey that has data in the window but not at that step.
    """
    folded = fold_top_n(states, top_n)
    for journey, start in {(k[0], k[2]) for k in folded}:
        view = catalog.journey(journey)
        steps = view.steps if view is not None else ()
        for step in (*steps, JOURNEY_LEVEL):
            folded.setdefault((journey, step, start, ALL, ALL), RowState())
    rum_agg = RumAggregator()
    syn_agg = SyntheticAggregator()
    rows = []
    for key in sorted(folded, key=_sort_key):
        journey, step, start, dim, value = key
        view = catalog.journey(journey)
        last = None
        if view is not None:
            last = folded.get((journey, view.last_step, start, dim, value))
        funnel = funnel_json(folded[key], last, journey_level=step == JOURNEY_LEVEL)
        rows.append(
            finalize(
                key,
                folded[key],
                catalog.thresholds_for(journey, step),
                funnel=funnel,
                policy=policy,
                window_s=window_s,
                rum=rum_agg,
                synthetic=syn_agg,
            )
        )
    return rows


def _sort_key(key: Key) -> tuple[str, str, int, int, str]:
    journey, step, start, dim, value = key
    return (journey, step, start, DIMENSION_ORDER.get(dim, 99), value)
