from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from journeylens.collector.formats.base import MalformedBody, RequestMeta
from journeylens.collector.formats.otlp import any_value, parse_logs, parse_traces
from journeylens.contracts.rum_beacons_v1 import EventKind

META = RequestMeta(app="demo-shop", received_at=datetime(2026, 11, 25, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"intValue": 184}, 184),
        ({"intValue": "184"}, 184),
        ({"intValue": "-3"}, -3),
        ({"intValue": "1e3"}, None),
        ({"doubleValue": 2310.4}, 2310.4),
        ({"doubleValue": 5}, 5.0),
        ({"stringValue": "x"}, "x"),
        ({"boolValue": True}, True),
        ({"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}}, [1, "a"]),
        ({"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}, {"k": False}),
        ({}, None),
        ("x", None),
    ],
)
def test_any_value_forms(value: object, expected: object) -> None:
    assert any_value(value) == expected


def vital(name: str, value: dict[str, object], metric_id: str) -> dict[str, object]:
    def attr(k: str, v: dict[str, object]) -> dict[str, object]:
        return {"key": k, "value": v}

    return {
        "timeUnixNano": "1795600790000000000",
        "attributes": [
            attr("event.name", {"stringValue": "browser.web_vital"}),
            attr("browser.web_vital.name", {"stringValue": name}),
            attr("browser.web_vital.value", value),
            attr("browser.web_vital.id", {"stringValue": metric_id}),
        ],
    }


def logs(*records: object) -> bytes:
    return orjson.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [{"key": "session.id", "value": {"stringValue": "s1"}}]
                    },
                    "scopeLogs": [{"logRecords": list(records)}],
                }
            ]
        }
    )


def test_int_value_number_and_string_and_dedupe() -> None:
    result = parse_logs(
        logs(
            vital("INP", {"intValue": 100}, "v5-1-1"),
            vital("INP", {"intValue": "250"}, "v5-1-1"),
            vital("LCP", {"doubleValue": 1200.5}, "v5-1-2"),
        ),
        META,
    )
    assert [(e.vitals.inp_ms, e.vitals.lcp_ms) for e in result.events] == [
        (250.0, None),
        (None, 1200.5),
    ]
    assert {e.session_id for e in result.events} == {"s1"}
    assert result.events[0].timestamp.isoformat() == "2026-11-25T09:59:50+00:00"


def test_bad_web_vital_rejected_other_logs_skipped() -> None:
    result = parse_logs(
        logs(
            vital("LCP", {"stringValue": "x"}, "a"),
            {"body": {"stringValue": "hi"}},
            "junk",
            vital("CLS", {"doubleValue": 0.1}, "b"),
        ),
        META,
    )
    assert [e.vitals.cls for e in result.events] == [0.1]
    assert [r.item_index for r in result.rejected] == [0, 2]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"resourceLogs": 3}',
        b'{"resourceLogs": [1]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": 1}]}]}',
    ],
)
def test_logs_wrong_shape_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse_logs(body, META)


def span(
    name: str, start_ms: float, end_ms: float, trace: str = "t1", sid: str = "s", **attrs: object
) -> dict[str, object]:
    base = 1795600780000 * 10**6
    return {
        "traceId": trace,
        "spanId": sid,
        "name": name,
        "startTimeUnixNano": str(base + int(start_ms * 1e6)),
        "endTimeUnixNano": str(base + int(end_ms * 1e6)),
        "attributes": [
            {"key": k, "value": {"intValue": v} if isinstance(v, int) else {"stringValue": v}}
            for k, v in attrs.items()
        ],
    }


def traces(*spans: object) -> bytes:
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


def test_resource_fetch_grouped_per_host_with_document_load() -> None:
    result = parse_traces(
        traces(
            span("documentLoad", 0, 2000, **{"http.url": "https://shop.x/p"}),
            span(
                "resourceFetch",
                10,
                110,
                sid="a",
                **{"http.url": "https://cdn.x/a.js", "http.response_content_length": 100},
            ),
            span("resourceFetch", 20, 70, sid="b", **{"http.url": "https://cdn.x/b.css"}),
        ),
        META,
    )
    (event,) = result.events
    assert event.kind is EventKind.PAGE_VIEW and event.page_id == "t1"
    assert event.navigation is not None and event.navigation.duration_ms == 2000.0
    (dep,) = event.dependencies
    assert (
        dep.host,
        dep.requests,
        dep.total_duration_ms,
        dep.max_duration_ms,
        dep.transfer_bytes,
    ) == ("cdn.x", 2, 150.0, 100.0, 100)


def test_fetch_span_error_and_skipped_spans() -> None:
    result = parse_traces(
        traces(
            span(
                "HTTP GET",
                0,
                40,
                trace="t2",
                **{"http.url": "https://api.x/a", "http.method": "GET", "http.status_code": 500},
            ),
            span("click", 0, 5, trace="t3"),
            {"traceId": "t4", "spanId": "z", "name": "documentLoad", "startTimeUnixNano": "x"},
        ),
        META,
    )
    assert [e.kind for e in result.events] == [EventKind.WEB_VITAL, EventKind.ERROR]
    assert result.events[1].api_errors[0].status == 500
    assert [r.item_index for r in result.rejected] == [2]
