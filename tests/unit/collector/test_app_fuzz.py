"""Property tests on the ingestion endpoints: no 5xx, bad input is a 4xx or dead-lettered,
valid input is never dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.collector.support import SITE_KEY, FakeSink, beacon, demo_catalog

from journeylens.collector.app import INGESTION_ROUTES, create_app
from journeylens.settings import CollectorSettings

CLIENT_ERRORS = {400, 413, 415}
OK = {200, 202, 204}
PATHS = [route.path for route in INGESTION_ROUTES]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
item_types = st.sampled_from(
    [
        "page_view",
        "soft_navigation",
        "web_vital",
        "error",
        "api_error",
        "step",
        "conversion",
        "bogus",
    ]
)
fuzzy_items = st.fixed_dictionaries(
    {"type": item_types},
    optional={
        "name": st.sampled_from(["LCP", "INP", "CLS", "x", "checkout:payment"]) | json_values,
        "value": st.floats(allow_nan=True) | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        "message": json_values,
        "url": json_values,
        "status": json_values,
        "ts": json_values,
        "vitals": json_values,
        "res": json_values,
        "nav": json_values,
        "currency": json_values,
    },
)


SINK = FakeSink(started=True)
APP = create_app(
    CollectorSettings(rate_limit_per_s=1e9, rate_limit_burst=10**9, max_batch_items=50),
    demo_catalog(),
    SINK,
)


def _post(path: str, body: bytes, content_type: str) -> tuple[httpx.Response, FakeSink]:
    SINK.events.clear()
    SINK.dead.clear()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
            return await client.post(
                f"{path}?k={SITE_KEY}", content=body, headers={"content-type": content_type}
            )

    return asyncio.run(go()), SINK


def _check(response: httpx.Response, sink: FakeSink) -> None:
    status = response.status_code
    assert status < 500, response.text
    assert status in OK | CLIENT_ERRORS, (status, response.text)
    if status == 400:
        assert response.json()["type"].endswith("malformed-body"), response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert not sink.events and len(sink.dead) == 1
    if status in OK and response.content:
        body: dict[str, Any] = response.json()
        if "accepted" in body:
            assert body["accepted"] == len(sink.events)
            assert body["rejected"] == len(sink.dead)
    for event in sink.events:
        assert event.journey and event.step
        assert "token=secret" not in event.url


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    body=st.binary(max_size=300) | json_values.map(lambda v: orjson.dumps(v)),
    content_type=st.sampled_from(
        [
            "text/plain;charset=UTF-8",
            "application/json",
            "application/reports+json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
)
def test_arbitrary_bodies_never_5xx(path: str, body: bytes, content_type: str) -> None:
    _check(*_post(path, body, content_type))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(fuzzy_items, min_size=1, max_size=8))
def test_beacon_items_land_or_are_dead_lettered(items: list[dict[str, Any]]) -> None:
    body = orjson.dumps(beacon("/checkout", items=items), option=orjson.OPT_NON_STR_KEYS)
    response, sink = _post("/v1/beacons", body, "text/plain;charset=UTF-8")
    _check(response, sink)
    assert response.status_code == 202
    assert len(sink.events) + len(sink.dead) == len(items)
    assert sorted(d.item_index or 0 for d in sink.dead) == sorted(
        {d.item_index or 0 for d in sink.dead}
    )


valid_items = st.one_of(
    st.builds(
        lambda lcp, cls: {"type": "page_view", "vitals": {"lcp": lcp, "cls": cls}},
        st.floats(0, 60_000),
        st.floats(0, 5),
    ),
    st.builds(
        lambda name, v: {"type": "web_vital", "name": name, "value": v},
        st.sampled_from(["LCP", "INP", "CLS", "FCP", "TTFB"]),
        st.floats(0, 60_000),
    ),
    st.builds(lambda m: {"type": "error", "message": m}, st.text(min_size=1, max_size=50)),
    st.builds(
        lambda s: {"type": "api_error", "url": "http://127.0.0.1:8601/x", "status": s},
        st.integers(0, 999),
    ),
    st.builds(lambda n: {"type": "step", "name": n}, st.text(min_size=1, max_size=30)),
    st.builds(lambda v: {"type": "conversion", "value": v, "currency": "EUR"}, st.floats(0, 1e6)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(valid_items, min_size=1, max_size=20),
    path=st.sampled_from(["/cart", "/checkout", "/product/abc", "/login", "/elsewhere"]),
)
def test_valid_beacons_are_never_dropped(items: list[dict[str, Any]], path: str) -> None:
    response, sink = _post("/v1/beacons", orjson.dumps(beacon(path, items=items)), "text/plain")
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(items), "rejected": 0}
    assert len(sink.events) == len(items) and not sink.dead
