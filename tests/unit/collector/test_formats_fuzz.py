"""Every parser, fed arbitrary bytes or plausible-but-wrong documents, either raises
MalformedBody or returns a ParseResult whose events honour the contract; valid items mixed
with invalid ones are never dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylens.collector.formats import PARSERS
from journeylens.collector.formats.base import MalformedBody, Parser, ParseResult, RequestMeta
from journeylens.contracts.rum_beacons_v1 import RumEvent

META = RequestMeta(
    app="demo-shop", received_at=datetime(2026, 11, 25, 10, tzinfo=UTC), user_agent="UA"
)
NOW_MS = 1795600800000
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "LCP",
            "CLS",
            "1795600790000",
            "https://a.test/x",
            "",
            "-1",
            "page_view",
            "network-error",
            "browser.web_vital",
            "~(a~1)",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def run(parser: Parser, body: bytes) -> ParseResult | None:
    try:
        result = parser(body, META)
    except MalformedBody:
        return None
    for event in result.events:  # model_construct output must still be a valid contract
        dumped = event.model_dump(mode="json")
        assert RumEvent.model_validate(dumped).model_dump(mode="json") == dumped
    return result


@FUZZ
@given(body=st.binary(max_size=400))
def test_arbitrary_bytes(body: bytes) -> None:
    for parser in PARSERS.values():
        run(parser, body)


def _mutate(doc: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace random parts of a valid document with arbitrary JSON."""
    if depth > 6 or data.draw(st.integers(0, 9)) == 0:
        return data.draw(json_values)
    if isinstance(doc, dict):
        return {k: _mutate(v, data, depth + 1) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_mutate(v, data, depth + 1) for v in doc]
    return doc


def _any(v: object) -> dict[str, object]:
    return {"doubleValue": v} if isinstance(v, float) else {"stringValue": str(v)}


TEMPLATES: dict[str, Any] = {
    "journeylens": {
        "v": 1,
        "sid": "s",
        "pid": "p",
        "url": "https://a.test/",
        "ts": NOW_MS,
        "items": [
            {
                "type": "page_view",
                "vitals": {"lcp": 1},
                "nav": {"dns": 1},
                "res": [{"host": "h", "n": 1}],
            },
            {"type": "error", "message": "m"},
        ],
    },
    "web-vitals": [{"name": "LCP", "value": 1.5, "id": "v5-1-1", "delta": 1.5}],
    "otlp-logs": {
        "resourceLogs": [
            {
                "resource": {"attributes": []},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1795600790000000000",
                                "attributes": [
                                    {"key": k, "value": _any(v)}
                                    for k, v in [
                                        ("event.name", "browser.web_vital"),
                                        ("browser.web_vital.name", "LCP"),
                                        ("browser.web_vital.value", 12.5),
                                        ("browser.web_vital.id", "v5-1-2"),
                                    ]
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    },
    "otlp-traces": {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "t",
                                "spanId": "s",
                                "name": "documentLoad",
                                "startTimeUnixNano": "1795600790000000000",
                                "endTimeUnixNano": "1795600791000000000",
                                "events": [
                                    {"name": "fetchStart", "timeUnixNano": "1795600790000000000"}
                                ],
                                "attributes": [
                                    {"key": "http.url", "value": {"stringValue": "https://a.test/"}}
                                ],
                            },
                            {
                                "traceId": "t",
                                "spanId": "r",
                                "name": "resourceFetch",
                                "startTimeUnixNano": "1795600790000000000",
                                "endTimeUnixNano": "1795600790100000000",
                                "attributes": [
                                    {
                                        "key": "http.url",
                                        "value": {"stringValue": "https://c.test/x"},
                                    }
                                ],
                            },
                        ]
                    }
                ]
            }
        ]
    },
    "faro": {
        "meta": {"session": {"id": "s"}, "page": {"url": "https://a.test/"}},
        "measurements": [{"type": "web-vitals", "values": {"lcp": 1}}],
        "exceptions": [{"type": "Error", "value": "x", "stacktrace": {"frames": [{}]}}],
        "events": [
            {
                "name": "faro.performance.resource",
                "attributes": {"name": "https://c.test/", "duration": "1"},
            },
            {"name": "faro.performance.navigation", "attributes": {"duration": "3"}},
            {"name": "step1"},
        ],
    },
    "reporting-api": [
        {
            "age": 1,
            "type": "network-error",
            "url": "https://c.test/",
            "body": {"phase": "dns", "type": "dns.failed", "elapsed_time": 2},
        },
        {"type": "csp-violation", "url": "https://a.test/", "body": {}},
    ],
}


@FUZZ
@given(data=st.data())
def test_plausible_but_wrong_json(data: st.DataObject) -> None:
    for name, template in TEMPLATES.items():
        run(PARSERS[name], orjson.dumps(_mutate(template, data)))


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "u",
                "pgu",
                "pid",
                "n",
                "rt.si",
                "rt.end",
                "rt.tstart",
                "t_done",
                "nt_nav_st",
                "nt_dns_st",
                "nt_dns_end",
                "pt.lcp",
                "c.cls",
                "et.inp",
                "mob.rtt",
                "err",
                "restiming",
                "rt.quit",
                "rt.abld",
                "http.initiator",
                "http.errno",
                "early",
            ]
        ),
        st.text(max_size=30)
        | st.sampled_from(
            [
                "",
                "https://a.test/",
                "spa",
                "xhr",
                "-5",
                "1e9",
                "~(~(m~'x))",
                '{"https://":{"a/":"3,a"}}',
                '{"x":"zz,_*1_"}',
                "~(" * 50,
            ]
        ),
        max_size=10,
    )
)
def test_boomerang_params(params: dict[str, str]) -> None:
    run(PARSERS["boomerang"], urlencode(params).encode())


valid_items = st.one_of(
    st.builds(lambda n: {"type": "step", "name": n}, st.text(min_size=1, max_size=8)),
    st.builds(lambda v: {"type": "web_vital", "name": "LCP", "value": v}, st.floats(0, 1e6)),
    st.builds(lambda m: {"type": "error", "message": m}, st.text(min_size=1, max_size=8)),
    st.builds(
        lambda s: {"type": "api_error", "url": "https://a.test/x", "status": s}, st.integers(0, 999)
    ),
    st.builds(lambda v: {"type": "conversion", "value": v, "currency": "EUR"}, st.floats(0, 1e6)),
    st.just({"type": "page_view", "vitals": {"cls": 0.1}, "nav": {"duration": 10}}),
)
invalid_items = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)),
    st.builds(lambda t: {"type": t}, st.text(max_size=5)),
    st.just({"type": "web_vital", "name": "LCP", "value": -1}),
    st.just({"type": "page_view", "vitals": {"lcp": "9"}}),
)


@FUZZ
@given(
    items=st.lists(st.tuples(st.booleans(), valid_items, invalid_items), min_size=1, max_size=12)
)
def test_valid_items_in_mixed_journeylens_batch_all_land(
    items: list[tuple[bool, dict[str, Any], Any]],
) -> None:
    batch = [good if keep else bad for keep, good, bad in items]
    body = orjson.dumps({"v": 1, "sid": "s", "pid": "p", "url": "https://a.test/", "items": batch})
    result = run(PARSERS["journeylens"], body)
    assert result is not None
    assert len(result.events) == sum(keep for keep, _, _ in items)
    assert len(result.rejected) == len(items) - len(result.events)


not_a_metric = json_values.filter(
    lambda v: not (isinstance(v, dict) and v.get("name") in {"LCP", "INP", "CLS", "FCP", "TTFB"})
)


@FUZZ
@given(
    items=st.lists(
        st.tuples(st.booleans(), st.floats(0, 1e5), not_a_metric), min_size=1, max_size=12
    )
)
def test_valid_metrics_in_mixed_web_vitals_batch_all_land(
    items: list[tuple[bool, float, Any]],
) -> None:
    batch = [
        {"name": "INP", "value": v, "id": f"v5-1-{i}"} if keep else junk
        for i, (keep, v, junk) in enumerate(items)
    ]
    result = run(PARSERS["web-vitals"], orjson.dumps(batch))
    assert result is not None
    assert len(result.events) == sum(keep for keep, _, _ in items)
    assert len(result.events) + len(result.rejected) == len(items)


@FUZZ
@given(
    items=st.lists(
        st.tuples(st.booleans(), st.integers(0, 10**6), json_values), min_size=1, max_size=12
    )
)
def test_valid_reports_in_mixed_nel_batch_all_land(items: list[tuple[bool, int, Any]]) -> None:
    batch = [
        {
            "age": age,
            "type": "network-error",
            "url": "https://c.test/",
            "body": {"phase": "connection", "type": "tcp.reset"},
        }
        if keep
        else junk
        for keep, age, junk in items
    ]
    result = run(PARSERS["reporting-api"], orjson.dumps(batch))
    assert result is not None
    assert len(result.events) == sum(keep for keep, _, _ in items)
    assert len(result.events) + len(result.rejected) == len(items)
