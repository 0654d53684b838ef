"""Enrichment: UA → device/browser/OS, country, probe flag, URL scrubbing, journey mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from journeylens.collector.enrich import (
    REDACTED,
    Enricher,
    EnrichError,
    MaxMindCountryLookup,
    UrlScrubber,
    classify_user_agent,
    country_from_header,
    is_probe_user_agent,
    path_of,
)
from journeylens.collector.formats import PARSERS
from journeylens.collector.formats.base import RequestMeta
from journeylens.contracts.catalog import load_catalog
from journeylens.contracts.rum_beacons_v1 import DeviceClass, RumEvent
from journeylens.domain.catalog_match import CatalogMatcher
from journeylens.settings import CollectorSettings

REPO = Path(__file__).resolve().parents[3]
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def matcher() -> CatalogMatcher:
    return CatalogMatcher(load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml"))


def beacon_events(
    items: list[dict[str, object]], url: str, ua: str | None = CHROME, conn: str | None = "4g"
) -> list[RumEvent]:
    body = {
        "v": 1,
        "sid": "s-1",
        "pid": "p-1",
        "url": url,
        "ts": NOW.timestamp() * 1000,
        "items": items,
    }
    if conn is not None:
        body["conn"] = {"type": conn, "rtt": 50}
    meta = RequestMeta(app="demo-shop", received_at=NOW, user_agent=ua)
    result = PARSERS["journeylens"](orjson.dumps(body), meta)
    assert not result.rejected, result.rejected
    return result.events


@pytest.mark.parametrize(
    ("ua", "device", "browser", "os"),
    [
        (CHROME, DeviceClass.DESKTOP, "Chrome", "Linux"),
        (WINDOWS_FIREFOX, DeviceClass.DESKTOP, "Firefox", "Windows"),
        (IPHONE, DeviceClass.MOBILE, "Mobile Safari", "iOS"),
        (IPAD, DeviceClass.TABLET, "Mobile Safari", "iOS"),
        (ANDROID_PHONE, DeviceClass.MOBILE, "Chrome Mobile", "Android"),
        (ANDROID_TABLET, DeviceClass.TABLET, "Chrome", "Android"),
        (GOOGLEBOT, DeviceClass.BOT, "Googlebot", "unknown"),
        ("curl/8.5.0", DeviceClass.UNKNOWN, "curl", "unknown"),
        ("", DeviceClass.UNKNOWN, "unknown", "unknown"),
    ],
)
def test_user_agent_classes(ua: str, device: DeviceClass, browser: str, os: str) -> None:
    info = classify_user_agent(ua)
    assert (info.device_class, info.browser, info.os) == (device, browser, os)


def test_versions() -> None:
    info = classify_user_agent(IPHONE)
    assert info.browser_version == "17"
    assert info.os_version == "17.4"


def test_user_agent_parses_are_cached(matcher: CatalogMatcher) -> None:
    enricher = Enricher(CollectorSettings(), matcher, ua_cache_size=8)
    for _ in range(5):
        enricher.context(user_agent=IPHONE)
    info = enricher.client_info.cache_info()  # type: ignore[attr-defined]
    assert (info.misses, info.hits) == (1, 4)
    for i in range(50):
        enricher.context(user_agent=f"{CHROME} x{i}")
    assert enricher.client_info.cache_info().currsize <= 8  # type: ignore[attr-defined]


def test_probe_marking() -> None:
    assert is_probe_user_agent(f"{CHROME} JourneyLensProbe/0.1.0")
    assert is_probe_user_agent(f"JourneyLensProbe/0.1.0 {CHROME}")
    assert not is_probe_user_agent(CHROME)
    assert not is_probe_user_agent(None)


def test_probe_header_and_ua_token_flag_events(matcher: CatalogMatcher) -> None:
    enricher = Enricher(CollectorSettings(), matcher)
    events = beacon_events([{"type": "page_view"}], "http://shop/cart")
    enricher.enrich(events, enricher.context(user_agent=CHROME, probe_header="run-1"))
    assert events[0].synthetic and events[0].probe_run_id == "run-1"

    ua = f"{CHROME} JourneyLensProbe/0.1.0"  # the token's suffix is the probe's version
    events = beacon_events([{"type": "page_view"}], "http://shop/cart", ua=ua)
    enricher.enrich(events, enricher.context(user_agent=ua))
    assert events[0].synthetic and events[0].probe_run_id is None
    assert events[0].context.browser == "Chrome"

    events = beacon_events([{"type": "page_view"}], "http://shop/cart", ua=ua)
    enricher.enrich(events, enricher.context(user_agent=ua, probe_header=" run-3 "))
    assert events[0].synthetic and events[0].probe_run_id == "run-3"

    events = beacon_events([{"type": "page_view"}], "http://shop/cart")
    enricher.enrich(events, enricher.context(user_agent=CHROME))
    assert not events[0].synthetic and events[0].probe_run_id is None


def test_country_from_trusted_header_only_when_configured(matcher: CatalogMatcher) -> None:
    assert country_from_header(" de ") == "DE"
    assert country_from_header("XX") is None
    assert country_from_header("T1") is None
    assert country_from_header("Germany") is None
    with_header = Enricher(CollectorSettings(country_header="CF-IPCountry"), matcher)
    assert with_header.country_header == "cf-ipcountry"
    assert with_header.context(user_agent=CHROME, country_header="fr").country == "FR"
    assert with_header.context(user_agent=CHROME, country_header="XX").country == "unknown"
    without = Enricher(CollectorSettings(), matcher)
    assert without.context(user_agent=CHROME, country_header="FR").country == "unknown"


class FakeGeo:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def country(self, ip: str) -> str | None:
        self.asked.append(ip)
        return {"203.0.113.9": "NL"}.get(ip)


def test_country_from_geoip_and_the_ip_is_not_stored(matcher: CatalogMatcher) -> None:
    geo = FakeGeo()
    enricher = Enricher(CollectorSettings(), matcher, geoip=geo)
    ctx = enricher.context(user_agent=CHROME, client_ip="203.0.113.9")
    assert ctx.country == "NL" and geo.asked == ["203.0.113.9"]
    events = beacon_events([{"type": "page_view"}], "http://shop/cart")
    enricher.enrich(events, ctx)
    assert events[0].context.country == "NL"
    assert "203.0.113.9" not in events[0].model_dump_json()


def test_geoip_db_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnrichError, match="GeoIP database not found"):
        MaxMindCountryLookup(tmp_path / "nope.mmdb")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s/a", "https://s/a"),
        ("https://s/a#frag", "https://s/a"),
        ("https://s/a?", "https://s/a"),
        ("https://s/a?q=lamp&token=abc#x", f"https://s/a?q=lamp&token={REDACTED}"),
        ("https://s/a?Password=x&page=2", f"https://s/a?Password={REDACTED}&page=2"),
        ("https://s/a?access_token=x", f"https://s/a?access_token={REDACTED}"),
        ("https://s/a?sessionid=x", f"https://s/a?sessionid={REDACTED}"),
        ("https://s/a?user%5Femail=a%40b", f"https://s/a?user%5Femail={REDACTED}"),
        ("https://s/a?token=&flag", "https://s/a?token=&flag"),
        ("https://s/a?zipcode=1&promo_code=2", f"https://s/a?zipcode=1&promo_code={REDACTED}"),
        ("/rel?email=a@b.c", f"/rel?email={REDACTED}"),
    ],
)
def test_url_scrubbing(url: str, expected: str) -> None:
    scrubber = UrlScrubber(CollectorSettings().scrub_query_params)
    assert scrubber.scrub(url) == expected


def test_scrub_rules_are_configurable() -> None:
    settings = CollectorSettings(scrub_query_params="q, ref")  # type: ignore[arg-type]
    scrubber = UrlScrubber(settings.scrub_query_params)
    assert (
        scrubber.scrub("https://s/?q=x&token=y&ref=z")
        == f"https://s/?q={REDACTED}&token=y&ref={REDACTED}"
    )


def test_path_of() -> None:
    assert path_of("https://s/a/b?x#y") == "/a/b"
    assert path_of("https://s") == "/"
    assert path_of("/rel?x") == "/rel"
    assert path_of("http://[::1") == "/"


def test_enrich_maps_journey_step_provider_and_scrubs(matcher: CatalogMatcher) -> None:
    enricher = Enricher(CollectorSettings(), matcher)
    url = "http://127.0.0.1:8600/product/p-100?email=a@b.c#reviews"
    items: list[dict[str, object]] = [
        {
            "type": "page_view",
            "vitals": {"lcp": 1200},
            "res": [
                {"host": "127.0.0.1:8602", "n": 3, "dur": 30},
                {"host": "fonts.example", "n": 1, "dur": 5},
            ],
        },
        {"type": "step", "name": "checkout:payment"},
        {"type": "api_error", "url": "http://127.0.0.1:8601/v1/charges?token=t", "status": 502},
    ]
    events = beacon_events(items, url, ua=IPHONE, conn="WIFI")
    enricher.enrich(events, enricher.context(user_agent=IPHONE))
    view, step, api = events
    assert (view.journey, view.step) == ("search", "product")
    assert view.url == f"http://127.0.0.1:8600/product/p-100?email={REDACTED}"
    assert view.path == "/product/p-100"
    providers = {d.host: d.provider for d in view.dependencies}
    assert providers == {"127.0.0.1:8602": "cdn", "fonts.example": None}
    assert (step.journey, step.step) == ("checkout", "payment")
    assert api.api_errors[0].url.endswith(f"token={REDACTED}")
    for event in events:
        assert event.context.device_class is DeviceClass.MOBILE
        assert event.context.connection_type == "wifi"
        assert event.context.rtt_ms == 50
        RumEvent.model_validate(event.model_dump(mode="json"))


def test_unknown_connection_types_are_bounded(matcher: CatalogMatcher) -> None:
    enricher = Enricher(CollectorSettings(), matcher)
    events = beacon_events([{"type": "page_view"}], "http://s/nowhere", conn="quantum-link")
    enricher.enrich(events, enricher.context(user_agent=CHROME))
    assert events[0].context.connection_type == "unknown"
    assert (events[0].journey, events[0].step) == ("_unmapped", "_unmapped")


def test_event_user_agent_wins_and_contexts_are_not_shared(matcher: CatalogMatcher) -> None:
    enricher = Enricher(CollectorSettings(), matcher)
    events = beacon_events([{"type": "page_view"}, {"type": "step", "name": "x"}], "http://s/cart")
    assert events[0].context is events[1].context  # the parser shares it
    events[1].user_agent = GOOGLEBOT
    enricher.enrich(events, enricher.context(user_agent=CHROME))
    assert events[0].context.device_class is DeviceClass.DESKTOP
    assert events[1].context.device_class is DeviceClass.BOT
