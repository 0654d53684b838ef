from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from journeylens.collector.formats.base import MalformedBody, RequestMeta
from journeylens.collector.formats.reporting_api import parse
from journeylens.contracts.rum_beacons_v1 import EventKind

META = RequestMeta(app="demo-shop", received_at=datetime(2026, 11, 25, 10, tzinfo=UTC))


def nel(phase: str, nel_type: str, **body: object) -> dict[str, object]:
    return {
        "age": 2000,
        "type": "network-error",
        "url": "https://cdn.x/app.js",
        "body": {
            "phase": phase,
            "type": nel_type,
            "elapsed_time": 120,
            "sampling_fraction": 0.25,
            **body,
        },
    }


@pytest.mark.parametrize(
    ("phase", "nel_type", "failures"),
    [
        ("dns", "dns.name_not_resolved", 1),
        ("connection", "tcp.reset", 1),
        ("connection", "tls.cert.date_invalid", 1),
        ("application", "http.error", 1),
        ("application", "ok", 0),
    ],
)
def test_nel_phases(phase: str, nel_type: str, failures: int) -> None:
    (event,) = parse(orjson.dumps([nel(phase, nel_type, status_code=503)]), META).events
    assert event.kind is EventKind.NETWORK_ERROR
    assert event.network_error is not None
    assert (event.network_error.phase, event.network_error.type) == (phase, nel_type)
    (dep,) = event.dependencies
    assert (dep.host, dep.requests, dep.failures, dep.total_duration_ms) == (
        "cdn.x",
        1,
        failures,
        120.0,
    )
    assert event.sample_rate == 0.25
    assert event.timestamp.isoformat() == "2026-11-25T09:59:58+00:00"


def test_page_reports_become_errors_unknown_rejected() -> None:
    reports = [
        {
            "type": "deprecation",
            "url": "https://shop.x/",
            "age": 0,
            "body": {"id": "X", "message": "Synchronous XHR is deprecated", "lineNumber": 3},
        },
        {"type": "intervention", "url": "https://shop.x/", "body": {"message": "blocked"}},
        {"type": "crash", "url": "https://shop.x/", "body": {"reason": "oom"}},
        {"type": "coep", "url": "https://shop.x/", "body": {}},
        {"type": "network-error", "url": "https://shop.x/", "body": []},
    ]
    result = parse(orjson.dumps(reports), META)
    assert [(e.errors[0].type, e.errors[0].message) for e in result.events] == [
        ("deprecation", "Synchronous XHR is deprecated"),
        ("intervention", "blocked"),
        ("crash", "crash: oom"),
    ]
    assert [r.item_index for r in result.rejected] == [3, 4]


def test_single_report_object_and_malformed() -> None:
    assert len(parse(orjson.dumps(nel("dns", "dns.failed")), META).events) == 1
    with pytest.raises(MalformedBody):
        parse(b'"x"', META)


def test_nel_host_keeps_the_port() -> None:
    report = {**nel("application", "http.error"), "url": "http://127.0.0.1:8601/pay"}
    (event,) = parse(orjson.dumps([report]), META).events
    assert [d.host for d in event.dependencies] == ["127.0.0.1:8601"]
