"""The compiled scan of raw RUM messages (`pre_aggregate_rum_raw`): what it takes, it aggregates
exactly as `pre_aggregate_rum` does on the decoded messages; what it does not take, it says, and
the two results merged are `pre_aggregate_rum` of everything."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylens.contracts.catalog import Catalog
from journeylens.domain.aggregation import (
    NATIVE_SCAN,
    BatchStates,
    merge_into,
    pre_aggregate_rum,
    pre_aggregate_rum_raw,
    rum_problem,
    synthetic_problem,
)
from journeylens.domain.catalog_view import CatalogView
from journeylens.processor.bench import BASE, bench_catalog, make_events

VIEW = CatalogView.from_catalog(Catalog.model_validate(bench_catalog(2, 2)))


def _state(batch: BatchStates) -> dict[str, Any]:
    return {
        "rows": {"|".join(map(str, key)): row.to_state() for key, row in batch.items()},
        "max_event_ts": batch.max_event_ts,
        "windows": sorted(batch.windows),
        "late": batch.late_events,
        "probe": batch.probe_events,
        "unmapped": batch.unmapped_events,
    }


def _scan_then_python(
    values: list[bytes], journey: str, watermark: float | None
) -> tuple[dict[str, Any], list[int]]:
    """The worker's way: the scan, then `pre_aggregate_rum` of what it left, merged."""
    scanned, rest = pre_aggregate_rum_raw(values, journey, VIEW, 60, watermark)
    left = pre_aggregate_rum([orjson.loads(values[i]) for i in rest], VIEW, 60, watermark)
    merged = BatchStates()
    merge_into(merged, scanned)
    merge_into(merged, left)
    merged.windows = scanned.windows | left.windows
    marks = [m for m in (scanned.max_event_ts, left.max_event_ts) if m is not None]
    merged.max_event_ts = max(marks) if marks else None
    for name in ("late_events", "probe_events", "unmapped_events"):
        setattr(merged, name, getattr(scanned, name) + getattr(left, name))
    return _state(merged), rest


def _python(values: list[bytes], watermark: float | None) -> dict[str, Any]:
    return _state(pre_aggregate_rum([orjson.loads(v) for v in values], VIEW, 60, watermark))


def test_the_compiled_scan_is_built_by_the_install() -> None:
    # optional for users without a C compiler (Python does it all, slower); CI must build it
    assert NATIVE_SCAN


@pytest.mark.parametrize("watermark", [None, BASE + 150.0])  # then the first window is late
def test_contract_messages_are_all_taken_with_the_python_result(watermark: float | None) -> None:
    values = [v for v in make_events(600, 2, 2, 3) if b'"journey":"j0"' in v]
    combined, rest = _scan_then_python(values, "j0", watermark)
    assert rest == []
    assert combined == _python(values, watermark)
    if watermark is not None:
        assert combined["late"] > 0


def test_scans_in_threads_agree_with_one_scan() -> None:
    """The scan reads without the GIL: scans running at once in threads (the worker's batch
    thread beside its event loop) give what one scan alone gives."""
    values = [v for v in make_events(4000, 2, 2, 3) if b'"journey":"j1"' in v]
    alone = _scan_then_python(values, "j1", None)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: _scan_then_python(values, "j1", None), range(8)))
    assert all(result == alone for result in results)
    assert alone[1] == [] and alone[0]["rows"]


def _event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = orjson.loads(make_events(1, 1, 1, 1)[0])
    base.update(fields)
    return base


NOT_TAKEN = {
    "js error": _event(errors=[{"message": "boom", "count": 2}]),
    "api error": _event(api_errors=[{"url": "/api", "status": 500}]),
    "conversion": _event(kind="conversion", conversion_value=12.5),
    "network error": _event(kind="network_error", url="https://cdn.example.com/x.js"),
    "probe traffic": _event(synthetic=True),
    "escaped string": _event(session_id='s"1'),
    "non-ASCII text": _event(context={"country": "FR", "browser": "Çhrome"}),
    "float request count": _event(dependencies=[{"host": "a", "requests": 2.0}]),
    "another journey": _event(journey="j1"),
    "timestamp as a number": _event(timestamp=BASE + 5),
    "timestamp with an offset": _event(timestamp="2026-11-25T11:00:00.000+01:00"),
    "too many dependencies": _event(dependencies=[{"host": f"h{i}"} for i in range(40)]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NOT_TAKEN))
def test_what_the_scan_does_not_read_exactly_is_left_to_python(name: str) -> None:
    message = NOT_TAKEN[name]
    message["journey"] = message.get("journey", "j0") if name == "another journey" else "j0"
    message["step"] = "s0"
    values = [orjson.dumps(_event(journey="j0", step="s1")), orjson.dumps(message)]
    combined, rest = _scan_then_python(values, "j0", None)
    assert rest == [1]
    assert combined == _python(values, None)


UNREADABLE = {
    "string vital": _event(vitals={"lcp_ms": "1200"}),
    "numeric session id": _event(session_id=7),
    "numeric event id": _event(event_id=7),
    "an impossible date": _event(timestamp="2026-02-30T10:00:00.000Z"),
}


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1, 2]",
        b'{"event_id": "x"}',
        b'{"event_id": "x", "timestamp": 1} x',
        b"",
        *(orjson.dumps({**event, "journey": "j0"}) for event in UNREADABLE.values()),
    ],
)
def test_what_is_not_a_valid_message_is_left_to_python(value: bytes) -> None:
    """Python dead-letters these (`rum_problem`, or not an object with the required fields)."""
    good = orjson.dumps(_event(journey="j0", step="s0"))
    _, rest = pre_aggregate_rum_raw([good, value, good], "j0", VIEW)
    assert rest == [1]


def test_unmapped_steps_and_the_journey_level_are_counted_not_aggregated() -> None:
    values = [orjson.dumps(_event(journey="j0", step=step)) for step in ("s0", "nope", "_journey")]
    values.append(orjson.dumps({k: v for k, v in _event(journey="j0").items() if k != "step"}))
    combined, rest = _scan_then_python(values, "j0", None)
    assert rest == []
    assert combined["unmapped"] == 3
    assert combined == _python(values, None)


# Everything a message may hold, with the value types and shapes the contract allows (and a few
# it does not), written compactly, with whitespace, or with key order shuffled.
_text = st.sampled_from(["FR", "DE", "mobile", "desktop", "Chrome", "4g", "", "unknown", "x y"])
_number = st.one_of(
    st.none(),
    st.integers(-5, 10**6),
    st.floats(-1.0, 1e7),
    st.sampled_from([0.0, 1e-10, 2.5e3, 1e-3, 123456789012.5]),
)
_dependency = st.fixed_dictionaries(
    {},
    optional={
        "host": st.one_of(st.none(), st.sampled_from(["cdn.example.com", "api.pay", ""])),
        "provider": st.one_of(st.none(), st.sampled_from(["stripe", "", "cdn"])),
        "requests": st.one_of(st.none(), st.integers(-1, 50)),
        "failures": st.one_of(st.none(), st.integers(0, 5)),
        "total_duration_ms": _number,
        "max_duration_ms": _number,
    },
)
_rum_event = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str),
        "timestamp": st.integers(BASE - 60, BASE + 240)
        .map(lambda s: datetime.fromtimestamp(s, UTC).isoformat(timespec="milliseconds"))
        .flatmap(lambda t: st.sampled_from([t, t.replace("+00:00", "Z")])),
        "journey": st.just("j0"),
    },
    optional={
        "step": st.one_of(st.none(), st.sampled_from(["s0", "s1", "other", "_journey"])),
        "kind": st.one_of(
            st.none(), st.sampled_from(["page_view", "soft_navigation", "web_vital"])
        ),
        "session_id": st.one_of(st.none(), st.sampled_from(["", "a", "b", "c", "d"])),
        "vitals": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional=dict.fromkeys(("lcp_ms", "inp_ms", "cls", "fcp_ms", "ttfb_ms"), _number),
            ),
        ),
        "navigation": st.one_of(
            st.none(), st.fixed_dictionaries({}, optional={"duration_ms": _number, "type": _text})
        ),
        "context": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    n: st.one_of(st.none(), _text)
                    for n in ("device_class", "country", "browser", "connection_type", "os")
                },
            ),
        ),
        "errors": st.sampled_from([None, []]),
        "api_errors": st.sampled_from([None, []]),
        "dependencies": st.one_of(st.none(), st.lists(_dependency, max_size=4)),
        "sample_rate": st.one_of(st.none(), st.sampled_from([1, 1.0, 0.5, 0.25, 0.1, 0])),
        "synthetic": st.sampled_from([False, None]),
        "extra": st.recursive(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(-(2**63), 2**63 - 1),
                st.floats(allow_nan=False, allow_infinity=False),
                _text,
            ),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
            max_leaves=8,
        ),
    },
)


def _write(event: dict[str, Any], style: int) -> bytes:
    if style == 0:
        return orjson.dumps(event)
    if style == 1:
        return json.dumps(event, indent=1).encode()
    return json.dumps(dict(reversed(list(event.items()))), separators=(", ", " : ")).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.tuples(_rum_event, st.integers(0, 2)), max_size=40),
    watermark=st.sampled_from([None, float(BASE + 100), float(BASE + 200)]),
)
def test_the_scan_and_python_agree_on_any_mix(
    events: list[tuple[dict[str, Any], int]], watermark: float | None
) -> None:
    values = [_write(event, style) for event, style in events]
    combined, rest = _scan_then_python(values, "j0", watermark)
    assert combined == _python(values, watermark)
    left = set(rest)
    taken = [orjson.loads(v) for i, v in enumerate(values) if i not in left]
    assert all(rum_problem(event) is None for event in taken)  # it takes only readable ones


_SEED_MESSAGES = [v for v in make_events(40, 2, 2, 2) if b'"journey":"j0"' in v]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A real message with a few bytes changed, cut, repeated or inserted."""
    value = bytearray(draw(st.sampled_from(_SEED_MESSAGES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(value)))
        action = draw(st.sampled_from(["set", "cut", "repeat", "insert"]))
        if action == "set" and at < len(value):
            value[at] = draw(st.sampled_from(b'{}[]",:.-+eE0159 \\\x00\x7f\xc3tfnul'))
        elif action == "cut":
            del value[at : at + draw(st.integers(1, 40))]
        elif action == "repeat":
            value[at:at] = value[at : at + draw(st.integers(1, 40))]
        else:
            value[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_mutated(), min_size=1, max_size=10))
def test_damaged_messages_are_read_safely_and_only_valid_ones_taken(values: list[bytes]) -> None:
    scanned, rest = pre_aggregate_rum_raw(values, "j0", VIEW, 60, None)
    left = set(rest)
    taken = [orjson.loads(v) for i, v in enumerate(values) if i not in left]  # valid JSON
    assert all(type(event) is dict and rum_problem(event) is None for event in taken)
    assert _state(scanned) == _state(pre_aggregate_rum(taken, VIEW, 60, None))


EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"


@pytest.mark.parametrize(
    ("topic", "check"), [("rum.beacons", rum_problem), ("synthetic.results", synthetic_problem)]
)
def test_every_contract_example_is_readable_by_aggregation(topic: str, check: Any) -> None:
    examples = sorted((EXAMPLES / topic / "v1").glob("*.json"))
    assert examples
    for path in examples:
        assert check(orjson.loads(path.read_bytes())) is None, path.name


def _probe_result(**fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(
        (EXAMPLES / "synthetic.results" / "v1" / "checkout_passed.json").read_bytes()
    )
    result.update(fields)
    return result


@pytest.mark.parametrize(
    ("message", "check", "problem"),
    [
        (_event(vitals={"lcp_ms": "1200"}), rum_problem, "vitals.lcp_ms: not a number"),
        (_event(session_id=7), rum_problem, "session_id: not a string"),
        (_event(context=["FR"]), rum_problem, "context: not an object"),
        (_event(dependencies=[{"requests": 1.5}]), rum_problem,
         "dependencies[].requests: not an integer"),
        (_event(errors=[{"count": "2"}]), rum_problem, "errors[].count: not an integer"),
        (_event(synthetic="no"), rum_problem, "synthetic: not a boolean"),
        (_event(timestamp="2026-02-30T10:00:00.000Z"), rum_problem,
         "timestamp: not a time: '2026-02-30T10:00:00.000Z'"),
        (_probe_result(duration_ms="fast"), synthetic_problem, "duration_ms: not a number"),
        (_probe_result(started_at=None), synthetic_problem, "started_at: not a time: None"),
        (_probe_result(steps=[{"step": ["cart"]}]), synthetic_problem,
         "steps[].step: not a string"),
        (_probe_result(steps=[{"step": "cart", "timings": {"dns_ms": "3"}}]), synthetic_problem,
         "steps[].timings.dns_ms: not a number"),
    ],
)  # fmt: skip
def test_a_field_aggregation_cannot_read_is_named(message: Any, check: Any, problem: str) -> None:
    assert check(message) == problem
