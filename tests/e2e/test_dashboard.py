"""The dashboard in headless Chromium: loads without console errors and draws the known data.

The API runs in a uvicorn thread on a free loopback port over a seeded ClickHouse database;
the page gets the token from the dev-token cookie. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from tests.fixtures.clickhouse import RunningClickHouse
from tests.integration.api_support import REPO, make_app, seed

from journeylens.stack.process import free_port
from journeylens.storage.client import Client

pytestmark = [pytest.mark.browser, pytest.mark.clickhouse]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def base_url(clickhouse_server: RunningClickHouse, clickhouse_client: Client) -> Iterator[str]:
    seed(clickhouse_client)
    app = make_app(
        clickhouse_server.target_for(clickhouse_client.database), dev_token="e2e-dev-token"
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=20_000)
    assert page.get_attribute("body", "data-ready") == "true"
    return page, problems


def test_overview_lists_journeys_with_health_and_revenue_at_risk(
    browser: Browser, base_url: str
) -> None:
    page, problems = open_page(browser, base_url + "/")
    assert page.locator(".card.journey").count() == 6
    checkout = page.locator('.card.journey[data-journey="checkout"]')
    assert checkout.locator(".badge.degraded").count() == 1
    assert checkout.locator(".vital.needs_improvement").count() == 1  # LCP 2900 ms
    assert "5,916 EUR" in checkout.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)
    assert problems == []
    page.close()


def test_journey_page_draws_charts_funnel_dependencies_and_segments(
    browser: Browser, base_url: str
) -> None:
    page, problems = open_page(browser, base_url + "/journeys/checkout?range=6h")
    lcp = page.locator('[data-metric="rum.lcp_ms.p75"]')
    assert lcp.locator("path.series").count() == 1
    assert lcp.locator("circle.pt").count() == 10  # ten 1-minute windows
    assert lcp.locator("rect.band-good").count() == 1
    assert lcp.locator("rect.band-poor").count() == 1
    assert page.locator('[data-metric="synthetic.availability"] circle.pt').count() == 10
    assert page.locator("#funnel rect.bar").count() == 4
    assert page.locator("#locations rect.bar").count() == 2
    assert page.locator("#locations rect.bar.poor").count() == 1  # frankfurt 90 %
    assert page.locator("#heatmap rect.cell").count() == 2 * 5  # FR, DE x 5 metrics
    assert page.locator("#heatmap rect.cell.good").count() >= 1
    rows = page.locator("#dependencies tbody tr")
    assert rows.count() == 2
    assert rows.first.inner_text().startswith("pay.localhost")
    assert "5,916 EUR" in page.locator("#incidents").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert problems == []
    page.close()


def test_without_a_token_the_page_asks_for_one(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    # drop the dev-token cookie before the page's script reads it
    context.add_init_script(
        "document.cookie = 'journeylens_dev_token=; max-age=0; path=/'; localStorage.clear();"
    )
    page = context.new_page()
    page.goto(base_url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#token", "not-the-token")
    page.click("#login-form button")
    page.wait_for_selector("#login-error:has-text('refused')")
    page.fill("#token", "e2e-dev-token")
    page.click("#login-form button")
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator(".card.journey").count() == 6
    assert page.evaluate("localStorage.getItem('journeylens.token')") == "e2e-dev-token"
    context.close()
