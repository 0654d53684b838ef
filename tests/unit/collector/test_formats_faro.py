from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from journeylens.collector.formats.base import MalformedBody, RequestMeta
from journeylens.collector.formats.faro import parse
from journeylens.contracts.rum_beacons_v1 import EventKind

META = RequestMeta(app="demo-shop", received_at=datetime(2026, 11, 25, 10, tzinfo=UTC))
FARO_META = {
    "app": {"name": "shop"},
    "session": {"id": "sess"},
    "page": {"id": "pg", "url": "https://shop.x/checkout"},
}


def payload(**parts: object) -> bytes:
    return orjson.dumps({"meta": FARO_META, **parts})


def test_navigation_string_attributes_are_numbers() -> None:
    nav = {
        "name": "faro.performance.navigation",
        "timestamp": "2026-11-25T09:59:50Z",
        "attributes": {
            "name": "https://shop.x/checkout",
            "duration": "1234.5",
            "dnsLookupTime": "7",
            "tlsNegotiationTime": "not-a-number",
            "ttfb": "301",
            "type": "back_forward",
            "faroNavigationId": "n1",
        },
    }
    res = {
        "name": "faro.performance.resource",
        "attributes": {
            "name": "https://cdn.x/a.js",
            "duration": "40.5",
            "responseStatus": "404",
            "encodedBodySize": "1000",
            "faroNavigationId": "n1",
        },
    }
    (event,) = parse(payload(events=[res, nav]), META).events
    assert event.kind is EventKind.PAGE_VIEW
    assert event.navigation is not None
    assert (event.navigation.duration_ms, event.navigation.dns_ms, event.navigation.tls_ms) == (
        1234.5,
        7.0,
        None,
    )
    assert event.vitals.ttfb_ms == 301.0
    assert event.navigation_type == "back-forward"
    (dep,) = event.dependencies
    assert (dep.host, dep.failures, dep.total_duration_ms, dep.transfer_bytes) == (
        "cdn.x",
        1,
        40.5,
        1000,
    )


def test_resources_without_navigation_become_a_page_update() -> None:
    res = {
        "name": "faro.performance.resource",
        "attributes": {"name": "https://cdn.x/a.js", "duration": "40", "faroNavigationId": "n9"},
    }
    (event,) = parse(payload(events=[res]), META).events
    assert event.kind is EventKind.WEB_VITAL and event.dependencies[0].requests == 1


def test_repeated_meta_batches_share_session_and_page() -> None:
    m1 = {"type": "web-vitals", "values": {"lcp": 900}, "context": {"id": "v4-1-1"}}
    m2 = {"type": "web-vitals", "values": {"inp": 80}, "context": {"id": "v4-1-2"}}
    a = parse(payload(measurements=[m1]), META).events[0]
    b = parse(payload(measurements=[m2]), META).events[0]
    assert (a.session_id, a.page_id) == (b.session_id, b.page_id) == ("sess", "pg")


def test_measurement_dedupe_and_rejects() -> None:
    body = payload(
        measurements=[
            {"type": "web-vitals", "values": {"cls": 0.01}, "context": {"id": "c"}},
            {"type": "web-vitals", "values": {"cls": "0.2"}, "context": {"id": "c"}},
            {"type": "web-vitals", "values": {"fid": 3}},
            {"type": "resource-usage", "values": {"x": 1}},
            7,
        ]
    )
    result = parse(body, META)
    assert [e.vitals.cls for e in result.events] == [0.2]
    assert [r.item_index for r in result.rejected] == [2, 4]


def test_events_skipped_steps_and_conversions() -> None:
    result = parse(
        payload(
            events=[
                {"name": "session_start", "attributes": {}},
                {"name": "faro.tracing.fetch", "attributes": {}},
                {"name": "add_to_cart", "attributes": {"sku": "1"}},
                {"name": "purchase", "attributes": {"value": "12.5", "currency": "usd"}},
                {"name": "route_change", "attributes": {"toUrl": "https://shop.x/done"}},
            ]
        ),
        META,
    )
    assert [(e.kind, e.step_event) for e in result.events] == [
        (EventKind.STEP, "add_to_cart"),
        (EventKind.CONVERSION, "purchase"),
        (EventKind.SOFT_NAVIGATION, None),
    ]
    assert result.events[1].conversion_value == 12.5 and result.events[1].currency == "USD"
    assert result.events[2].path == "/done"


@pytest.mark.parametrize(
    "body", [b"[]", b"{}", b'{"meta": 1}', orjson.dumps({"meta": {}, "events": {}})]
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse(body, META)
