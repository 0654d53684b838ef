"""The collector app over HTTP (httpx ASGI transport).

Guard behaviour (keys, origins, CORS, limits, problem+json, rate limits) runs against a fake
sink; the happy paths with a real Kafka broker check what lands on the topics.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.unit.collector.support import (
    CHROME_UA,
    ORIGIN,
    SITE_KEY,
    FakeSink,
    beacon,
    boomerang_query,
    demo_catalog,
    nel_reports_body,
    otlp_logs_body,
    read_topic,
    web_vitals_body,
)

from journeylens.collector.app import AGENT_BUILD_HINT, create_app
from journeylens.collector.sink import KafkaSink, SinkUnavailable, encode
from journeylens.settings import CollectorSettings, KafkaSettings, Topic

ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink(started=True)


@pytest.fixture
def make_client(sink: FakeSink, tmp_path: Path) -> ClientFactory:
    def make(
        settings: CollectorSettings | None = None, agent: Path | None = None, producer: Any = None
    ) -> httpx.AsyncClient:
        app = create_app(
            settings or CollectorSettings(),
            demo_catalog(),
            producer or sink,
            agent_path=agent or tmp_path / "missing" / "rum.js",
        )
        transport = httpx.ASGITransport(app=app)
        return httpx.AsyncClient(
            transport=transport,
            base_url="http://collector",
            headers={"user-agent": CHROME_UA},
        )

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    assert body["type"] == f"urn:journeylens:problem:{slug}"
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    return body


# ------------------------------------------------------------------------ site keys


async def test_missing_key_is_401(client: httpx.AsyncClient, sink: FakeSink) -> None:
    response = await client.post("/v1/beacons", content=orjson.dumps(beacon()))
    assert_problem(response, 401, "missing-site-key")
    assert not sink.events


async def test_unknown_key_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/beacons?k=pk_nope_nope", content=orjson.dumps(beacon()))
    assert_problem(response, 403, "unknown-site-key")


@pytest.mark.parametrize("where", ["query", "header"])
async def test_key_in_query_or_header(
    client: httpx.AsyncClient, sink: FakeSink, where: str
) -> None:
    params = {"k": SITE_KEY} if where == "query" else {}
    headers = {"X-JourneyLens-Key": SITE_KEY} if where == "header" else {}
    response = await client.post(
        "/v1/beacons", params=params, headers=headers, content=orjson.dumps(beacon("/cart"))
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "rejected": 0}
    event = sink.events[0]
    assert (event.app, event.journey, event.step) == ("demo-shop", "checkout", "cart")
    assert "secret" not in event.url and "#" not in event.url
    assert event.context.browser == "Chrome" and event.context.connection_type == "4g"
    assert event.dependencies[0].provider == "cdn"


# ------------------------------------------------------------------------ CORS


async def test_allowed_origin_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/v1/beacons?k={SITE_KEY}",
        headers={"origin": ORIGIN},
        content=orjson.dumps(beacon()),
    )
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in response.headers["vary"]


async def test_other_origin_is_403(client: httpx.AsyncClient, sink: FakeSink) -> None:
    response = await client.post(
        f"/v1/beacons?k={SITE_KEY}",
        headers={"origin": "http://evil.example"},
        content=orjson.dumps(beacon()),
    )
    assert_problem(response, 403, "origin-not-allowed")
    assert not sink.events


async def test_preflight(client: httpx.AsyncClient) -> None:
    asked = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-journeylens-key",
    }
    ok = await client.options(f"/v1/beacons?k={SITE_KEY}", headers=asked)
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert ok.headers["access-control-allow-headers"] == "content-type,x-journeylens-key"
    header_key = await client.options("/v1/faro", headers=asked)
    assert header_key.status_code == 204
    denied = await client.options(
        f"/v1/beacons?k={SITE_KEY}", headers={**asked, "origin": "http://evil.example"}
    )
    assert_problem(denied, 403, "origin-not-allowed")
    reports = await client.options(f"/v1/reports?k={SITE_KEY}", headers=asked)
    assert reports.status_code == 204


# ------------------------------------------------------------------------ limits


async def test_body_too_large_by_content_length(make_client: ClientFactory) -> None:
    async with make_client(CollectorSettings(max_body_bytes=1000)) as c:
        response = await c.post(f"/v1/beacons?k={SITE_KEY}", content=b"x" * 1001)
    assert_problem(response, 413, "body-too-large")


async def test_body_too_large_when_streamed(make_client: ClientFactory) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    async with make_client(CollectorSettings(max_body_bytes=1000)) as c:
        response = await c.post(f"/v1/beacons?k={SITE_KEY}", content=chunks())
    assert_problem(response, 413, "body-too-large")


async def test_gzip_bodies_and_gzip_bombs(make_client: ClientFactory, sink: FakeSink) -> None:
    headers = {"content-encoding": "gzip"}
    async with make_client(CollectorSettings(max_body_bytes=4096)) as c:
        ok = await c.post(
            f"/v1/beacons?k={SITE_KEY}",
            headers=headers,
            content=gzip.compress(orjson.dumps(beacon())),
        )
        bomb = await c.post(
            f"/v1/beacons?k={SITE_KEY}", headers=headers, content=gzip.compress(b" " * 1_000_000)
        )
        broken = await c.post(f"/v1/beacons?k={SITE_KEY}", headers=headers, content=b"nope")
        brotli = await c.post(
            f"/v1/beacons?k={SITE_KEY}", headers={"content-encoding": "br"}, content=b"nope"
        )
    assert ok.status_code == 202 and len(sink.events) == 1
    assert_problem(bomb, 413, "body-too-large")
    assert_problem(broken, 400, "malformed-body")
    assert_problem(brotli, 415, "unsupported-encoding")


async def test_batch_too_large(make_client: ClientFactory, sink: FakeSink) -> None:
    items = [{"type": "step", "name": f"s{i}"} for i in range(11)]
    async with make_client(CollectorSettings(max_batch_items=10)) as c:
        response = await c.post(
            f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(beacon(items=items))
        )
    assert_problem(response, 413, "batch-too-large")
    assert not sink.events


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"[]", b'{"v": 2}', b"\xff\xfe", b'"just a string"']
)
async def test_malformed_body_is_400_and_dead_lettered(
    client: httpx.AsyncClient, sink: FakeSink, body: bytes
) -> None:
    response = await client.post(f"/v1/beacons?k={SITE_KEY}", content=body)
    problem = assert_problem(response, 400, "malformed-body")
    assert problem["detail"]
    assert len(sink.dead) == 1 and not sink.events
    letter = sink.dead[0]
    assert letter.source == "journeylens" and letter.app == "demo-shop"
    assert base64.b64decode(letter.raw_base64) == body


async def test_valid_items_land_and_invalid_ones_are_dead_lettered(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    items = [
        {"type": "page_view", "vitals": {"lcp": 1000}},
        {"type": "bogus"},
        {"type": "step", "name": "checkout:payment"},
        {"type": "web_vital", "name": "LCP", "value": -1},
    ]
    response = await client.post(
        f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(beacon("/checkout", items))
    )
    assert response.status_code == 202
    assert response.json() == {"accepted": 2, "rejected": 2}
    assert [(e.journey, e.step) for e in sink.events] == [
        ("checkout", "checkout-page"),
        ("checkout", "payment"),
    ]
    assert [d.item_index for d in sink.dead] == [1, 3]
    assert orjson.loads(base64.b64decode(sink.dead[0].raw_base64)) == {"type": "bogus"}
    assert all(d.reason for d in sink.dead)


# ------------------------------------------------------------------------ rate limit, 503


async def test_rate_limit_per_site_key(make_client: ClientFactory) -> None:
    settings = CollectorSettings(rate_limit_per_s=0.5, rate_limit_burst=2)
    async with make_client(settings) as c:
        codes = [
            (await c.post(f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(beacon())))
            for _ in range(3)
        ]
    assert [r.status_code for r in codes[:2]] == [202, 202]
    assert_problem(codes[2], 429, "rate-limited")
    assert int(codes[2].headers["retry-after"]) >= 1


async def test_kafka_unavailable_is_503_with_retry_after(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    sink.fail = SinkUnavailable("Kafka did not acknowledge within 5s", 7)
    response = await client.post(f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(beacon()))
    assert_problem(response, 503, "kafka-unavailable")
    assert response.headers["retry-after"] == "7"


# ------------------------------------------------------------------------ other formats


async def test_every_format_route(client: httpx.AsyncClient, sink: FakeSink) -> None:
    text = {"content-type": "text/plain;charset=UTF-8"}
    vitals = await client.post(
        f"/v1/web-vitals?k={SITE_KEY}", headers=text, content=web_vitals_body()
    )
    assert vitals.status_code == 202, vitals.text
    boomerang_get = await client.get(f"/v1/boomerang?{boomerang_query()}")
    assert boomerang_get.status_code == 204, boomerang_get.text
    boomerang_post = await client.post(
        f"/v1/boomerang?k={SITE_KEY}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        content=(boomerang_query() + "&sb=1").encode(),
    )
    assert boomerang_post.status_code == 202, boomerang_post.text
    boomerang_form = await client.post(
        f"/v1/boomerang?k={SITE_KEY}",
        files={
            "u": (None, "http://127.0.0.1:8600/cart"),
            "pid": (None, "abc123"),
            "rt.tstart": (None, "1"),
            "t_done": (None, "100"),
        },
    )
    assert boomerang_form.status_code == 202, boomerang_form.text
    logs = await client.post(
        "/v1/logs",
        headers={"x-journeylens-key": SITE_KEY, "content-type": "application/json"},
        content=otlp_logs_body(),
    )
    assert logs.status_code == 200 and logs.json() == {}, logs.text
    reports = await client.post(
        f"/v1/reports?k={SITE_KEY}",
        headers={"content-type": "application/reports+json"},
        content=nel_reports_body(),
    )
    assert reports.status_code == 202, reports.text
    sources = {e.source.value for e in sink.events}
    assert {"web-vitals", "boomerang", "otlp", "reporting-api"} <= sources
    nel = next(e for e in sink.events if e.source.value == "reporting-api")
    assert nel.network_error is not None and nel.dependencies
    assert {(e.journey, e.step) for e in sink.events if e.source.value == "boomerang"} == {
        ("checkout", "cart")
    }


async def test_probe_traffic_is_flagged(client: httpx.AsyncClient, sink: FakeSink) -> None:
    response = await client.post(
        f"/v1/beacons?k={SITE_KEY}",
        headers={
            "x-journeylens-probe": "run-9",
            "user-agent": f"{CHROME_UA} JourneyLensProbe/0.1.0",
        },
        content=orjson.dumps(beacon()),
    )
    assert response.status_code == 202
    assert sink.events[0].synthetic and sink.events[0].probe_run_id == "run-9"


# ------------------------------------------------------------------------ agent, health


async def test_rum_js_missing_tells_how_to_build(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/rum.js"), 404, "agent-not-built")
    assert AGENT_BUILD_HINT in problem["detail"]


async def test_rum_js_is_served_with_caching_headers(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    agent = tmp_path / "rum.js"
    agent.write_text("console.log('rum')")
    async with make_client(agent=agent) as c:
        first = await c.get("/rum.js")
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("application/javascript")
        assert "max-age" in first.headers["cache-control"]
        again = await c.get("/rum.js", headers={"if-none-match": first.headers["etag"]})
        assert again.status_code == 304
        agent.write_text("console.log('rum v2')")
        changed = await c.get("/rum.js", headers={"if-none-match": first.headers["etag"]})
        assert changed.status_code == 200 and changed.text == "console.log('rum v2')"


async def test_health_and_readiness(client: httpx.AsyncClient, sink: FakeSink) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    sink.started = False
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503 and "retry-after" in not_ready.headers


# ------------------------------------------------------------------------ real Kafka


@pytest.mark.kafka
async def test_beacons_land_on_kafka_keyed_by_journey(
    make_client: ClientFactory, kafka_settings: KafkaSettings, kafka_topics: dict[Topic, str]
) -> None:
    kafka_sink = KafkaSink(kafka_settings, CollectorSettings())
    await kafka_sink.start()
    assert await kafka_sink.ready()
    sid = f"s-{uuid.uuid4().hex}"
    try:
        async with make_client(producer=kafka_sink) as c:
            responses = await asyncio.gather(
                c.post(
                    f"/v1/beacons?k={SITE_KEY}",
                    content=orjson.dumps(
                        beacon(
                            "/cart",
                            sid=sid,
                            items=[{"type": "page_view", "vitals": {"lcp": 900}}, {"type": "nope"}],
                        )
                    ),
                ),
                c.post(
                    f"/v1/beacons?k={SITE_KEY}",
                    content=orjson.dumps(beacon("/product/p-1", sid=sid)),
                ),
                c.post(
                    f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(beacon("/nowhere", sid=sid))
                ),
            )
            assert [r.status_code for r in responses] == [202, 202, 202]
            ready = await c.get("/readyz")
            assert ready.status_code == 200
    finally:
        await kafka_sink.stop()
    records = await read_topic(
        kafka_settings,
        kafka_topics[Topic.RUM_BEACONS],
        lambda v: v.get("session_id") == sid,
        expected=3,
        settle_s=1.0,
    )
    by_path = {r.value["path"]: r for r in records}
    assert len(records) == 3 and set(by_path) == {"/cart", "/product/p-1", "/nowhere"}
    assert by_path["/cart"].key == b"checkout" and by_path["/cart"].value["step"] == "cart"
    assert by_path["/product/p-1"].key == b"search"
    assert by_path["/product/p-1"].value["step"] == "product"
    assert by_path["/nowhere"].key == b"_unmapped"
    assert "secret" not in by_path["/cart"].value["url"]
    dead = await read_topic(
        kafka_settings,
        kafka_topics[Topic.DEADLETTER],
        lambda v: v.get("app") == "demo-shop" and b'"nope"' in base64.b64decode(v["raw_base64"]),
        expected=1,
    )
    assert dead and dead[0].key == b"journeylens" and dead[0].value["item_index"] == 1


async def test_kafka_values_equal_orjson_of_model_dump(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    """The sink's fast encoder is byte-identical to orjson.dumps(model_dump(mode="json"))."""
    await test_every_format_route(client, sink)
    await client.post(
        f"/v1/beacons?k={SITE_KEY}",
        headers={"x-journeylens-probe": "run-1"},
        content=orjson.dumps(
            beacon(
                "/checkout",
                items=[
                    {"type": "page_view", "vitals": {"lcp": 1, "cls": 0}, "nav": {"dns": 0}},
                    {"type": "error", "message": "boom", "line": 3},
                    {"type": "api_error", "url": "http://127.0.0.1:8601/x?token=1", "status": 0},
                    {"type": "conversion", "value": 10, "currency": "eur"},
                    {"type": "nope"},
                ],
            )
        ),
    )
    assert len(sink.events) >= 8 and sink.dead
    for message in [*sink.events, *sink.dead]:
        assert encode(message) == orjson.dumps(message.model_dump(mode="json"))


# ------------------------------------------------------------------------ the hot path


class _BrokenSink(FakeSink):
    async def publish(self, events: Any, dead: Any) -> None:
        raise RuntimeError("a bug, not Kafka being away")


async def test_an_unexpected_failure_is_500_problem_json(make_client: ClientFactory) -> None:
    async with make_client(producer=_BrokenSink(started=True)) as c:
        response = await c.post(f"/v1/beacons?k={SITE_KEY}", content=orjson.dumps(beacon()))
    assert_problem(response, 500, "internal-error")


async def test_other_methods_and_paths_still_go_through_fastapi(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get(f"/v1/beacons?k={SITE_KEY}")).status_code == 405
    assert (await client.post(f"/v1/beacons/?k={SITE_KEY}", content=b"{}")).status_code in (
        307,
        404,
    )
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_site_key_in_an_encoded_query_string(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    encoded = SITE_KEY.replace("_", "%5F")
    response = await client.post(
        f"/v1/beacons?x=1&k={encoded}&k=pk_other", content=orjson.dumps(beacon("/cart"))
    )
    assert response.status_code == 202, response.text
    assert sink.events[0].app == "demo-shop"


async def test_a_repeated_header_counts_once_first_value_wins(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    headers = [("X-JourneyLens-Key", SITE_KEY), ("X-JourneyLens-Key", "pk_nope_nope")]
    response = await client.post(
        "/v1/beacons", headers=headers, content=orjson.dumps(beacon("/cart"))
    )
    assert response.status_code == 202, response.text
    assert sink.events[0].app == "demo-shop"


# ------------------------------------------------------------------------ raw ASGI answers


async def test_repeated_answers_carry_their_own_counts_and_origin(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    """202 answers are built once per (accepted, rejected, origin) and reused: each request
    still gets the counts and CORS headers of its own beacon and origin."""
    url = f"/v1/beacons?k={SITE_KEY}"
    one = beacon()
    bad = beacon(items=[{"type": "page_view"}, {"type": "nope"}])
    cors = {"origin": ORIGIN}
    answers = [
        await client.post(url, content=orjson.dumps(body), headers=headers)
        for body, headers in ((one, cors), (bad, cors), (one, cors), (one, {}))
    ]
    assert [a.status_code for a in answers] == [202, 202, 202, 202]
    assert [a.json() for a in answers] == [
        {"accepted": 1, "rejected": 0},
        {"accepted": 1, "rejected": 1},
        {"accepted": 1, "rejected": 0},
        {"accepted": 1, "rejected": 0},
    ]
    assert [a.headers.get("access-control-allow-origin") for a in answers] == [
        ORIGIN, ORIGIN, ORIGIN, None,
    ]  # fmt: skip
    assert all(a.headers["content-length"] == str(len(a.content)) for a in answers)
    assert len(sink.events) == 4


async def test_ingestion_routes_answer_through_the_router_when_mounted(
    sink: FakeSink, tmp_path: Path
) -> None:
    """Mounted under a prefix, requests miss the exact-path shortcut and reach the endpoints
    through FastAPI's router: same answers."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = create_app(CollectorSettings(), demo_catalog(), sink, agent_path=tmp_path / "rum.js")
    outer = Starlette(routes=[Mount("/collect", app=app)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
        ok = await c.post(
            f"/collect/v1/beacons?k={SITE_KEY}",
            content=orjson.dumps(beacon()),
            headers={"origin": ORIGIN, "user-agent": CHROME_UA},
        )
        bad = await c.post(f"/collect/v1/beacons?k={SITE_KEY}", content=b"{not json")
    assert ok.status_code == 202, ok.text
    assert ok.json() == {"accepted": 1, "rejected": 0}
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert ok.headers["content-type"] == "application/json"
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert len(sink.events) == 1


async def test_enriched_contexts_are_shared_only_between_equal_contexts(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    """Contexts are cached per process: beacons from the same browser, connection and country
    share one; another user agent or connection gets its own."""
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    url = f"/v1/beacons?k={SITE_KEY}"
    slow = beacon()
    slow["conn"] = {"type": "3g", "rtt": 300, "downlink": 1}
    for body, agent in ((beacon(), CHROME_UA), (beacon(), CHROME_UA), (beacon(), firefox),
                        (slow, CHROME_UA)):  # fmt: skip
        response = await client.post(url, content=orjson.dumps(body), headers={"user-agent": agent})
        assert response.status_code == 202
    chrome, again, fox, slow_chrome = (event.context for event in sink.events)
    assert chrome is again
    assert (chrome.browser, fox.browser) == ("Chrome", "Firefox")
    assert (chrome.connection_type, slow_chrome.connection_type) == ("4g", "3g")
    assert (chrome.rtt_ms, slow_chrome.rtt_ms) == (50.0, 300.0)
    assert slow_chrome.browser == "Chrome" and slow_chrome is not chrome
