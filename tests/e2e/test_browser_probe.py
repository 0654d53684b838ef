"""Browser journeys in real headless Chromium (Debian's) against the demo shop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tests.fixtures.kafka import free_ports

from journeylens.contracts.catalog import Journey
from journeylens.contracts.synthetic_results_v1 import RunStatus, StepStatus
from journeylens.demo_shop.server import running_in_thread
from journeylens.demo_shop.settings import DemoShopSettings, Service
from journeylens.synthetic.browser_step import BrowserSession
from journeylens.synthetic.plan import compile_journey, load_plans
from journeylens.synthetic.runner import JourneyRunner

CHROMIUM = Path("/usr/bin/chromium")
CATALOG = Path(__file__).resolve().parents[2] / "infra" / "catalog" / "demo-shop.yaml"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium (apt-get install)"),
]


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShopSettings]:
    shop_port, payment_port, cdn_port, sso_port = free_ports(4)
    settings = DemoShopSettings(
        shop_port=shop_port, payment_port=payment_port, cdn_port=cdn_port, sso_port=sso_port
    )
    with running_in_thread(settings):
        yield settings


@pytest.fixture
def overrides(shop: DemoShopSettings) -> dict[str, str]:
    return {
        "shop": shop.url(Service.SHOP),
        "sso": shop.url(Service.SSO),
        "pay": shop.url(Service.PAYMENT),
        "cdn": shop.url(Service.CDN),
    }


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[JourneyRunner]:
    browser = BrowserSession(CHROMIUM)
    try:
        yield JourneyRunner(
            location="test-1",
            max_network_retries=1,
            retry_delay_s=0.05,
            screenshot_dir=tmp_path / "screenshots",
            browser=browser,
        )
    finally:
        await browser.close()


@pytest.fixture(autouse=True)
def no_faults(shop: DemoShopSettings) -> Iterator[None]:
    yield
    httpx.delete(f"{shop.url(Service.SHOP)}/_admin/faults").raise_for_status()


async def test_catalog_login_runs_in_chromium_and_reports_vitals(
    overrides: dict[str, str], runner: JourneyRunner
) -> None:
    login = next(p for p in load_plans(CATALOG, overrides).plans if p.journey_id == "login")
    assert login.uses_browser
    result = await runner.run(login)
    assert result.status is RunStatus.PASSED, result.error
    assert [s.step for s in result.steps] == ["login-page", "sso-authorize", "account"]
    for step in result.steps:
        assert step.kind == "browser" and step.status is StepStatus.PASSED
        assert step.vitals is not None
        assert step.vitals.lcp_ms is not None and step.vitals.lcp_ms > 0
        assert step.vitals.fcp_ms is not None and step.vitals.fcp_ms > 0
        assert step.vitals.cls is not None and step.vitals.cls >= 0
        assert step.vitals.ttfb_ms is not None and step.vitals.ttfb_ms >= 0
    page, sso, _account = result.steps
    assert page.timings.ttfb_ms is not None and page.timings.ttfb_ms > 0  # navigation timing
    assert sso.url is not None and "/account" in sso.url  # back from the SSO redirect flow


async def test_clicks_report_inp(overrides: dict[str, str], runner: JourneyRunner) -> None:
    journey = Journey.model_validate(
        {
            "id": "checkout-browser",
            "name": "Checkout in a browser",
            "probe": {"variables": {"shop": overrides["shop"]}},
            "steps": [
                {
                    "id": "product",
                    "probe": {
                        "browser": [
                            {"goto": "{shop}/product/p-100"},
                            {"click": "#add-to-cart"},
                            {"assert_url": "/cart"},
                        ]
                    },
                },
                {"id": "checkout-page", "probe": {"browser": [{"click": "#checkout"}]}},
                {
                    "id": "payment",
                    "probe": {
                        "browser": [
                            {"click": "#pay"},
                            {"assert_text": {"selector": "#thanks", "text": "Thank you"}},
                        ]
                    },
                },
            ],
        }
    )
    result = await runner.run(compile_journey(journey))
    assert result.status is RunStatus.PASSED, result.error
    # Clicks that run a script before navigating (add to cart, pay) report INP; a plain link
    # navigates before the event timing entry is delivered, so it may not (as in RUM).
    by_step = {s.step: s.vitals for s in result.steps}
    for step_id in ("product", "payment"):
        vitals = by_step[step_id]
        assert vitals is not None and vitals.inp_ms is not None and vitals.inp_ms > 0, by_step


async def test_failing_assertion_saves_a_screenshot(
    overrides: dict[str, str], runner: JourneyRunner
) -> None:
    journey = Journey.model_validate(
        {
            "id": "broken-login",
            "name": "Login expecting the wrong title",
            "probe": {"variables": {"shop": overrides["shop"]}},
            "steps": [
                {
                    "id": "login-page",
                    "probe": {
                        "browser": [
                            {"goto": "{shop}/login"},
                            {
                                "assert_text": {"selector": "h1", "text": "Log out"},
                                "timeout_ms": 500,
                            },
                        ]
                    },
                },
                {"id": "after", "probe": {"browser": [{"click": "#sso-login"}]}},
            ],
        }
    )
    result = await runner.run(compile_journey(journey))
    assert result.status is RunStatus.FAILED
    assert result.failed_step == "login-page"
    assert result.error == "login-page: assert_text 'h1': expected 'Log out', got 'Sign in'"
    assert result.steps[0].attempts == 1  # an assertion is not retried
    assert result.steps[1].status is StepStatus.SKIPPED
    assert result.screenshot is not None and result.screenshot == result.steps[0].screenshot
    shot = Path(result.screenshot)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_browser_traffic_is_marked(
    shop: DemoShopSettings, overrides: dict[str, str], runner: JourneyRunner
) -> None:
    httpx.post(
        f"{shop.url(Service.SHOP)}/_admin/faults",
        json={"status": 503, "error_rate": 1, "only": {"user_agent_contains": "JourneyLensProbe"}},
    ).raise_for_status()
    login = next(p for p in load_plans(CATALOG, overrides).plans if p.journey_id == "login")
    result = await runner.run(login)
    assert result.status is RunStatus.FAILED
    assert result.error == f"login-page: goto {overrides['shop']}/login: HTTP 503"
