from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from journeylens.collector.formats._common import DependencyGroups
from journeylens.collector.formats.base import MalformedBody, RequestMeta, stable_id
from journeylens.collector.formats.journeylens import BeaconBatch, parse
from journeylens.collector.sink import encode
from journeylens.contracts.common import WebVitals
from journeylens.contracts.rum_beacons_v1 import EventKind, RumEvent

META = RequestMeta(
    app="demo-shop",
    received_at=datetime(2026, 11, 25, 10, tzinfo=UTC),
    user_agent="UA",
    sample_rate=0.2,
)
NOW_MS = 1795600800000


def beacon(*items: dict[str, object], **envelope: object) -> bytes:
    doc: dict[str, object] = {
        "v": 1,
        "sid": "s1",
        "pid": "p1",
        "url": "https://x.test/a?b=1",
        "ts": NOW_MS - 1000,
        "items": list(items),
    }
    doc.update(envelope)
    return orjson.dumps(doc)


def test_page_view_fields() -> None:
    result = parse(
        beacon(
            {
                "type": "page_view",
                "vitals": {"lcp": 1500, "cls": 0.01},
                "res": [{"host": "CDN.x.test", "n": 4, "dur": 100}],
            },
            conn={"type": "3g", "rtt": 300, "downlink": 1.2},
        ),
        META,
    )
    (event,) = result.events
    assert event.kind is EventKind.PAGE_VIEW
    assert (event.vitals.lcp_ms, event.vitals.cls) == (1500.0, 0.01)
    assert event.path == "/a"
    assert event.context.connection_type == "3g"
    assert event.context.rtt_ms == 300.0
    assert event.dependencies[0].host == "cdn.x.test"
    assert event.dependencies[0].max_duration_ms == 25.0  # no max: mean of the group
    assert event.sample_rate == 0.2  # no "sr": the collector's rate
    assert RumEvent.model_validate(event.model_dump()) == event


def test_sample_rate_from_beacon() -> None:
    (event,) = parse(beacon({"type": "step", "name": "a"}, sr=0.5), META).events
    assert event.sample_rate == 0.5


@pytest.mark.parametrize(
    "item",
    [
        {"type": "page_view", "vitals": {"lcp": -1}},
        {"type": "page_view", "vitals": {"lcp": "12"}},
        {"type": "page_view", "vitals": []},
        {"type": "page_view", "res": [{"host": "a", "n": 0}]},
        {"type": "page_view", "res": [{"host": "a", "n": 2, "fail": 3}]},
        {"type": "web_vital", "name": "FID", "value": 3},
        {"type": "web_vital", "name": "LCP"},
        {"type": "error"},
        {"type": "api_error", "url": "https://a/b", "status": 1000},
        {"type": "api_error", "url": "https://a/b", "status": "500"},
        {"type": "step", "name": ""},
        {"type": "conversion", "value": 10, "currency": "EURO"},
        {"type": "conversion", "value": -1},
        {"type": "step", "name": "a", "ts": "yesterday"},
        {"type": None},
        [1, 2],
    ],
)
def test_invalid_items_are_rejected_and_the_rest_lands(item: object) -> None:
    result = parse(beacon({"type": "step", "name": "ok"}, item), META)  # type: ignore[arg-type]
    assert [e.step_event for e in result.events] == ["ok"]
    (rejected,) = result.rejected
    assert rejected.item_index == 1
    assert orjson.loads(rejected.raw) == item


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        beacon(v=2),
        beacon(sid=""),
        beacon(pid=None),
        beacon(url=3),
        beacon(),
        orjson.dumps({"v": 1, "sid": "s", "pid": "p", "url": "u"}),
    ],
)
def test_bad_envelope_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse(body, META)


def test_timestamps_are_clamped_and_default_to_batch_then_received() -> None:
    items = [
        {"type": "step", "name": "past", "ts": NOW_MS - 30 * 3600_000},
        {"type": "step", "name": "future", "ts": NOW_MS + 3600_000},
        {"type": "step", "name": "batch"},
    ]
    events = parse(beacon(*items), META).events
    assert [e.timestamp.isoformat() for e in events] == [
        "2026-11-24T10:00:00+00:00",
        "2026-11-25T10:05:00+00:00",
        "2026-11-25T09:59:59+00:00",
    ]
    (event,) = parse(beacon({"type": "step", "name": "x"}, ts=None), META).events
    assert event.timestamp == META.received_at


def test_event_ids_are_deterministic_and_distinct() -> None:
    body = beacon(
        {"type": "step", "name": "a", "ts": NOW_MS - 5},
        {"type": "step", "name": "b", "ts": NOW_MS - 5},
        {"type": "page_view", "ts": NOW_MS - 9},
    )
    first, second = parse(body, META), parse(body, META)
    ids = [e.event_id for e in first.events]
    assert ids == [e.event_id for e in second.events]
    assert len(set(ids)) == 3


def test_examples_match_the_pydantic_schema() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "schemas/examples/inputs/journeylens"
    for path in folder.glob("*.json"):
        if path.name.endswith(".expected.json"):
            continue
        doc = orjson.loads(path.read_bytes())
        valid = [
            i for i in doc["items"] if i["type"] not in {"heartbeat"} and i.get("name") != "FID"
        ]
        BeaconBatch.model_validate({**doc, "items": valid})


def test_items_after_a_step_marker_carry_that_step() -> None:
    from journeylens.collector.enrich import Enricher
    from journeylens.contracts.catalog import load_catalog
    from journeylens.domain.catalog_match import CatalogMatcher
    from journeylens.settings import CatalogSettings, CollectorSettings

    result = parse(
        beacon(
            {"type": "page_view"},
            {"type": "step", "name": "checkout:payment", "step": "ignored:for-markers"},
            {
                "type": "api_error",
                "url": "https://x.test/api/pay",
                "status": 502,
                "step": "checkout:payment",
            },
            {"type": "error", "message": "boom", "step": "checkout:payment"},
            {"type": "conversion", "value": 10, "name": "order", "step": "checkout:payment"},
            {"type": "conversion", "value": 10, "name": "order"},
            url="http://127.0.0.1:8600/checkout",
        ),
        META,
    )
    assert not result.rejected
    events = result.events
    assert [e.step_event for e in events] == [
        None, "checkout:payment", "checkout:payment", "checkout:payment", "checkout:payment",
        "order",
    ]  # fmt: skip
    enricher = Enricher(CollectorSettings(), CatalogMatcher(load_catalog(CatalogSettings().path)))
    enricher.enrich(events, enricher.context(user_agent="UA"))
    assert [(e.journey, e.step) for e in events] == [
        ("checkout", "checkout-page"),
        ("checkout", "payment"),
        ("checkout", "payment"),
        ("checkout", "payment"),
        ("checkout", "payment"),
        ("checkout", "checkout-page"),  # no step carried: the page's URL decides
    ]
    bad = parse(beacon({"type": "error", "message": "x", "step": 3}), META)
    assert not bad.events and bad.rejected[0].reason == "'step' must be a non-empty string"


# ----------------------------------------------------------------- fast paths (same outputs)


def _grouped_reference(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    """What `DependencyGroups` gives for the agent's entries (the parser's fast path skips it)."""
    groups = DependencyGroups()
    for entry in entries:
        total = float(entry.get("dur", 0) or 0)  # type: ignore[arg-type]
        longest = entry.get("max")
        n = entry["n"]
        assert isinstance(n, int)
        groups.add(
            str(entry["host"]).lower(),
            requests=n,
            failures=int(entry.get("fail", 0)),  # type: ignore[call-overload]
            total_ms=total,
            max_ms=total / n if longest is None else float(longest),  # type: ignore[arg-type]
            transfer_bytes=int(entry.get("bytes", 0)),  # type: ignore[call-overload]
        )
    return [timing.model_dump(mode="json") for timing in groups.result()]


@pytest.mark.parametrize(
    "res",
    [
        [{"host": "b.test", "n": 2, "dur": 10.25, "max": 7.0}, {"host": "A.test", "n": 1}],
        [{"host": "a.test", "n": 3, "dur": 1.23456, "fail": 1, "bytes": 10}],
        [{"host": "a.test", "n": 1, "dur": -0.0, "max": -0.0}, {"host": "c.test", "n": 1}],
        [{"host": "a.test", "n": 2, "dur": 10, "max": 9}, {"host": "b.test", "n": 1, "dur": 0}],
        [  # a host twice: summed
            {"host": "a.test", "n": 2, "dur": 10.0, "max": 6.0},
            {"host": "b.test", "n": 1, "dur": 1.0},
            {"host": "A.test", "n": 1, "dur": 8.5, "fail": 1, "bytes": 7},
        ],
        [{"host": "x.test:8443", "n": 7, "dur": 100.0004, "max": 33.3336}],
    ],
)
def test_dependencies_match_dependency_groups(res: list[dict[str, object]]) -> None:
    result = parse(beacon({"type": "page_view", "res": res}), META)
    assert not result.rejected
    dumped = [d.model_dump(mode="json") for d in result.events[0].dependencies]
    assert dumped == _grouped_reference(res)
    assert orjson.dumps(dumped) == orjson.dumps(_grouped_reference(res))  # -0.0 vs 0.0 too


@pytest.mark.parametrize(
    "ts", [None, NOW_MS - 5, float(NOW_MS - 5), NOW_MS - 5.25, "1795600799000"]
)
def test_event_ids_hash_the_documented_parts(ts: object) -> None:
    item: dict[str, object] = {"type": "page_view", "pid": "p9", "url": "https://x.test/b"}
    step: dict[str, object] = {"type": "step", "name": "checkout:pay"}
    if ts is not None:
        item["ts"] = step["ts"] = ts
    events = parse(beacon(item, step, item), META).events
    number = None if ts is None else float(ts)  # type: ignore[arg-type]
    view_id = stable_id(
        "journeylens", "demo-shop", "s1", "p9", "page_view", number, "https://x.test/b"
    )
    step_id = stable_id("journeylens", "demo-shop", "s1", "p1", "step", number, "checkout:pay")
    assert [e.event_id for e in events] == [view_id, step_id, view_id]


def test_vitals_and_navigation_keep_field_order_and_fields_set() -> None:
    item = {
        "type": "page_view",
        "vitals": {"ttfb": 80, "lcp": 1200.5, "inp": None},
        "nav": {"duration": 900, "dns": 1.5, "bogus": 3},
    }
    event = parse(beacon(item), META).events[0]
    assert list(event.vitals.model_dump()) == list(WebVitals.model_fields)
    assert event.vitals.model_fields_set == {"ttfb_ms", "lcp_ms"}
    assert event.vitals.ttfb_ms == 80.0 and type(event.vitals.ttfb_ms) is float
    assert event.navigation is not None
    assert event.navigation.model_fields_set == {"duration_ms", "dns_ms"}
    assert encode(event) == orjson.dumps(event.model_dump(mode="json"))
    empty = parse(beacon({"type": "page_view", "vitals": {}, "nav": {"dns": None}}), META)
    assert empty.events[0].navigation is None
    assert empty.events[0].vitals == WebVitals()


def test_connection_contexts_are_shared_per_distinct_input_and_typed() -> None:
    """`connection()` returns one object per distinct (type, rtt, downlink), with the JSON
    types part of the key: ``1`` is a number, ``True`` is not, though they compare equal."""
    from journeylens.collector.formats import _common as c

    first = c.connection("4g", 50, 10)
    assert c.connection("4g", 50, 10) is first
    assert (first.connection_type, first.rtt_ms, first.downlink_mbps) == ("4g", 50.0, 10.0)
    as_bool = c.connection("4g", True, 10)
    assert as_bool is not c.connection("4g", 1, 10)
    assert as_bool.rtt_ms is None and c.connection("4g", 1, 10).rtt_ms == 1.0
    listed = c.connection("4g", [50], 10)  # unhashable input still gives its context
    assert listed.rtt_ms is None and listed.connection_type == "4g"
