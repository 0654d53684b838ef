"""Real headless Chromium → collector (a real uvicorn process) → real Kafka.

Three pages, each served from a local HTTP server on a free loopback port:

- our agent (``/rum.js`` served by the collector) on a product page that marks a journey
  step, a conversion and a failed API call;
- the unmodified ``web-vitals`` library (its IIFE build from sdk/browser/node_modules)
  posting each metric as JSON to ``/v1/web-vitals`` with ``navigator.sendBeacon``;
- ``boomerang.js`` from npm with its RT, NavigationTiming and ResourceTiming plugins
  beaconing to ``/v1/boomerang``.

Each page is left (navigation to about:blank) so the clients flush on pagehide; the test
then reads the beacons back from Kafka and checks journey, step and the measurements.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.unit.collector.support import SITE_KEY, read_topic

from journeylens.settings import KafkaSettings, Topic
from journeylens.stack.process import free_port

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BOOMERANG_FILES = [
    "boomerang.js",
    "plugins/rt.js",
    "plugins/navtiming.js",
    "plugins/restiming.js",
    "plugins/zzz-last-plugin.js",
]


def _page(title: str, head: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}"
        f"</head><body><h1>{title}</h1><p>{'Lorem ipsum dolor sit amet. ' * 40}</p>"
        f"<img src='/static/pixel.svg' width='40' height='40' alt=''>{body}</body></html>"
    )


def _pages(collector: str) -> dict[str, str]:
    rum = _page(
        "Lamp",
        f"<script src='{collector}/rum.js' data-key='{SITE_KEY}' data-endpoint='{collector}' "
        "data-flush-delay='0' async></script>",
        "<button id='pay' onclick=\"journeylens.step('checkout:payment');"
        "journeylens.conversion(129.9,'EUR','order');"
        "fetch('/api/missing').catch(function(){})\">Pay</button>",
    )
    vitals = _page(
        "Checkout",
        "<script src='/vendor/web-vitals/web-vitals.iife.js'></script>",
        "<script>(function(){"
        f"var url='{collector}/v1/web-vitals?k={SITE_KEY}';"
        "function send(m){var body=JSON.stringify(Object.assign({},m,{page:location.href}));"
        "navigator.sendBeacon(url, body);}"
        "webVitals.onTTFB(send);webVitals.onFCP(send);webVitals.onLCP(send);"
        "webVitals.onCLS(send);webVitals.onINP(send);})();</script>"
        "<button id='go'>Go</button>",
    )
    boomerang_scripts = "".join(
        f"<script src='/vendor/boomerangjs/{name}'></script>" for name in BOOMERANG_FILES
    )
    boomerang = _page(
        "Cart",
        boomerang_scripts + "<script>BOOMR.init({beacon_url:"
        f"'{collector}/v1/boomerang?k={SITE_KEY}', autorun: true,"
        " ResourceTiming: {enabled: true}, NavigationTiming: {enabled: true}});</script>",
        "",
    )
    return {"/product/p-100": rum, "/checkout": vitals, "/cart": boomerang}


class _Handler(SimpleHTTPRequestHandler):
    pages: dict[str, str] = {}
    vendor: dict[str, Path] = {}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path in self.pages:
            self._send(200, "text/html; charset=utf-8", self.pages[path].encode())
        elif path == "/static/pixel.svg":
            svg = b"<svg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/>"
            self._send(200, "image/svg+xml", svg)
        elif path.startswith("/vendor/"):
            _, _, package, rest = path.split("/", 3)
            root = self.vendor.get(package)
            file = (root / rest).resolve() if root else None
            if file is None or root is None or not file.is_relative_to(root) or not file.is_file():
                self._send(404, "text/plain", b"not found")
            else:
                self._send(200, "application/javascript", file.read_bytes())
        else:
            self._send(404, "application/json", b'{"error": "not found"}')

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def built_agent() -> Path:
    agent = SDK / "dist" / "rum.js"
    if not agent.is_file() or not (SDK / "node_modules" / "boomerangjs").is_dir():
        pytest.fail(
            "browser agent not built: npm --prefix sdk/browser ci && "
            "npm --prefix sdk/browser run build"
        )
    return agent


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, int]]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def collector(
    built_agent: Path,
    site: tuple[str, int],
    kafka_settings: KafkaSettings,
    kafka_topics: dict[Topic, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    origin, _ = site
    catalog = yaml.safe_load((REPO / "infra" / "catalog" / "demo-shop.yaml").read_text())
    catalog["apps"][0]["allowed_origins"] = [origin]
    catalog_path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(catalog))
    port = free_port()
    env = {
        **os.environ,
        "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "JOURNEYLENS_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "JOURNEYLENS_CATALOG_PATH": str(catalog_path),
        "JOURNEYLENS_COLLECTOR_AGENT_JS": str(built_agent),
    }
    log = tmp_path_factory.mktemp("collector-log") / "collector.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-c",
                "from journeylens.cli.collector import command; command()",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                pytest.fail(f"collector exited: {log.read_text()}")
            time.sleep(0.3)
        else:
            pytest.fail(f"collector not ready: {log.read_text()}")
        _Handler.pages = _pages(url)
        _Handler.vendor = {
            "web-vitals": (SDK / "node_modules" / "web-vitals" / "dist").resolve(),
            "boomerangjs": (SDK / "node_modules" / "boomerangjs").resolve(),
        }
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _visit(origin: str, path: str, interact: str | None = None) -> list[str]:
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            page.goto(f"{origin}{path}", wait_until="load")
            page.wait_for_timeout(1000)
            if interact:
                page.click(interact)
                page.wait_for_timeout(500)
            page.goto("about:blank")  # pagehide → the clients flush with sendBeacon
            page.wait_for_timeout(1000)
        finally:
            browser.close()
    return console


def _events(
    kafka: KafkaSettings, topic: str, origin: str, source: str, expected: int
) -> list[dict[str, Any]]:
    records = asyncio.run(
        read_topic(
            kafka,
            topic,
            lambda v: v.get("source") == source and str(v.get("url", "")).startswith(origin),
            expected=expected,
            timeout_s=30,
            settle_s=1.5,
        )
    )
    return [r.value | {"_key": r.key} for r in records]


@pytest.fixture(scope="module")
def rum_topic(kafka_topics: dict[Topic, str]) -> str:
    return kafka_topics[Topic.RUM_BEACONS]


def test_our_agent(
    collector: str, site: tuple[str, int], kafka_settings: KafkaSettings, rum_topic: str
) -> None:
    origin, _ = site
    console = _visit(origin, "/product/p-100", interact="#pay")
    events = _events(kafka_settings, rum_topic, origin, "journeylens", expected=4)
    kinds = {e["kind"] for e in events}
    assert {"page_view", "step", "conversion", "error"} <= kinds, (kinds, console)
    view = next(e for e in events if e["kind"] == "page_view")
    assert (view["journey"], view["step"], view["_key"]) == ("search", "product", b"search")
    vitals = {k for e in events for k, v in e["vitals"].items() if v is not None}
    assert {"ttfb_ms", "fcp_ms"} <= vitals, (events, console)
    assert view["vitals"]["ttfb_ms"] is not None
    assert view["navigation"]["duration_ms"] > 0
    assert view["context"]["browser"] in {"HeadlessChrome", "Chrome"}
    assert view["session_id"].startswith("s-")
    step = next(e for e in events if e["kind"] == "step")
    assert (step["journey"], step["step"], step["_key"]) == ("checkout", "payment", b"checkout")
    conversion = next(e for e in events if e["kind"] == "conversion")
    assert conversion["conversion_value"] == 129.9 and conversion["currency"] == "EUR"
    assert (conversion["journey"], conversion["step"]) == ("checkout", "payment")
    api = next(e for e in events if e["kind"] == "error" and e["api_errors"])
    assert api["api_errors"][0]["status"] == 404
    # recorded after journeylens.step('checkout:payment'): on that step, not the page's
    assert (api["journey"], api["step"], api["_key"]) == ("checkout", "payment", b"checkout")
    assert "lcp_ms" in vitals, events


def test_unmodified_web_vitals_library(
    collector: str, site: tuple[str, int], kafka_settings: KafkaSettings, rum_topic: str
) -> None:
    origin, _ = site
    console = _visit(origin, "/checkout", interact="#go")
    events = _events(kafka_settings, rum_topic, origin, "web-vitals", expected=3)
    names = {k for e in events for k, v in e["vitals"].items() if v is not None}
    assert {"ttfb_ms", "fcp_ms", "lcp_ms"} <= names, (names, console)
    for event in events:
        assert (event["journey"], event["step"], event["_key"]) == (
            "checkout",
            "checkout-page",
            b"checkout",
        )
        assert event["kind"] == "web_vital"


def test_boomerang(
    collector: str, site: tuple[str, int], kafka_settings: KafkaSettings, rum_topic: str
) -> None:
    origin, _ = site
    console = _visit(origin, "/cart")
    events = _events(kafka_settings, rum_topic, origin, "boomerang", expected=1)
    views = [e for e in events if e["kind"] == "page_view"]
    assert views, (events, console)
    view = views[0]
    assert (view["journey"], view["step"], view["_key"]) == ("checkout", "cart", b"checkout")
    assert view["navigation"] is not None
    assert view["vitals"]["ttfb_ms"] is not None, view["vitals"]
    hosts = {d["host"] for d in view["dependencies"]}
    assert any(host.startswith("127.0.0.1") for host in hosts), view["dependencies"]
