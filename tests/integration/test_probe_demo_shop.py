"""The HTTP probe against the real demo shop (four services on free loopback ports)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from tests.fixtures.kafka import free_ports

from journeylens.cli.probe import command as probe_command
from journeylens.contracts.synthetic_results_v1 import (
    RunStatus,
    StepResult,
    StepStatus,
    SyntheticResult,
)
from journeylens.demo_shop.server import running_in_thread
from journeylens.demo_shop.settings import DemoShopSettings, Service
from journeylens.synthetic.plan import JourneyPlan, load_plans
from journeylens.synthetic.runner import JourneyRunner

CATALOG = Path(__file__).resolve().parents[2] / "infra" / "catalog" / "demo-shop.yaml"
VARIABLES = {Service.SHOP: "shop", Service.PAYMENT: "pay", Service.CDN: "cdn", Service.SSO: "sso"}


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
    return {name: shop.url(service) for service, name in VARIABLES.items()}


@pytest.fixture
def plans(overrides: dict[str, str]) -> dict[str, JourneyPlan]:
    loaded = load_plans(CATALOG, overrides)
    assert loaded.problems == []
    # Browser journeys run in tests/e2e (they need Chromium).
    return {plan.journey_id: plan for plan in loaded.plans if not plan.uses_browser}


@pytest.fixture(autouse=True)
def no_faults(shop: DemoShopSettings) -> Iterator[None]:
    yield
    for service in Service:
        httpx.delete(f"{shop.url(service)}/_admin/faults").raise_for_status()


@pytest.fixture
def runner() -> JourneyRunner:
    return JourneyRunner(location="test-1", max_network_retries=2, retry_delay_s=0.05)


def add_fault(shop: DemoShopSettings, service: Service, **rule: object) -> None:
    httpx.post(f"{shop.url(service)}/_admin/faults", json=rule).raise_for_status()


def step(result: SyntheticResult, step_id: str) -> StepResult:
    return next(s for s in result.steps if s.step == step_id)


async def test_healthy_run_passes_every_step_with_plausible_phases(
    plans: dict[str, JourneyPlan], runner: JourneyRunner
) -> None:
    await runner.run(plans["products-api"])  # warm-up: first request of the process
    for plan in plans.values():
        result = await runner.run(plan)
        assert result.status is RunStatus.PASSED, result.error
        assert result.failed_step is None and result.location == "test-1"
        assert [s.step for s in result.steps] == [s.step_id for s in plan.steps]
        SyntheticResult.model_validate_json(result.model_dump_json())
        for s in result.steps:
            t = s.timings
            assert s.status is StepStatus.PASSED and s.attempts == 1
            assert t.dns_ms is not None and t.dns_ms >= 0
            assert t.connect_ms is not None and t.connect_ms >= 0
            assert t.tls_ms == 0  # plain http
            assert t.ttfb_ms is not None and t.ttfb_ms > 0
            assert t.transfer_ms is not None and t.transfer_ms >= 0
            phases = t.dns_ms + t.connect_ms + t.tls_ms + t.ttfb_ms + t.transfer_ms
            assert phases <= s.duration_ms + 0.5
            assert s.duration_ms - phases <= max(1.0, 0.05 * s.duration_ms), (s.step, t, s)
        assert sum(s.duration_ms for s in result.steps) <= result.duration_ms


async def test_payment_500_fails_the_run_at_payment_without_retry(
    shop: DemoShopSettings, plans: dict[str, JourneyPlan], runner: JourneyRunner
) -> None:
    add_fault(shop, Service.PAYMENT, error_rate=1, status=500)
    result = await runner.run(plans["checkout"])
    assert result.status is RunStatus.FAILED
    assert result.failed_step == "payment"
    assert result.error == "payment: expected status 200, got 500"
    payment = step(result, "payment")
    assert payment.http_status == 500 and payment.attempts == 1
    assert [s.status for s in result.steps] == [
        StepStatus.PASSED,
        StepStatus.PASSED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]


async def test_api_latency_shows_in_ttfb_of_that_step_only(
    shop: DemoShopSettings, plans: dict[str, JourneyPlan], runner: JourneyRunner
) -> None:
    add_fault(shop, Service.SHOP, latency_ms=800, path_prefix="/api/search")
    result = await runner.run(plans["search"])
    assert result.status is RunStatus.PASSED, result.error
    slow, product = result.steps
    assert slow.timings.ttfb_ms is not None and slow.timings.ttfb_ms >= 800
    assert slow.timings.connect_ms is not None and slow.timings.connect_ms < 200
    assert slow.timings.transfer_ms is not None and slow.timings.transfer_ms < 200
    assert product.timings.ttfb_ms is not None and product.timings.ttfb_ms < 300
    assert product.duration_ms < 400


async def test_refused_port_is_retried_then_error(
    plans: dict[str, JourneyPlan], overrides: dict[str, str], runner: JourneyRunner
) -> None:
    (closed_port,) = free_ports(1)
    loaded = load_plans(CATALOG, {**overrides, "pay": f"http://127.0.0.1:{closed_port}"})
    checkout = next(p for p in loaded.plans if p.journey_id == "checkout")
    result = await runner.run(checkout)
    assert result.status is RunStatus.ERROR
    assert result.failed_step == "payment"
    payment = step(result, "payment")
    assert payment.attempts == 3
    assert result.error is not None and "after 3 attempts" in result.error
    assert "ConnectError" in result.error
    assert step(result, "confirmation").status is StepStatus.SKIPPED


async def test_a_payment_post_that_timed_out_is_not_sent_twice(
    shop: DemoShopSettings, plans: dict[str, JourneyPlan], runner: JourneyRunner
) -> None:
    add_fault(shop, Service.PAYMENT, latency_ms=1500, path_prefix="/v1/charges")
    checkout = plans["checkout"]
    steps = tuple(
        dataclasses.replace(s, timeout_s=0.5) if s.step_id == "payment" else s
        for s in checkout.steps
    )
    result = await runner.run(dataclasses.replace(checkout, steps=steps))
    assert result.status is RunStatus.ERROR and result.failed_step == "payment"
    payment = step(result, "payment")
    assert payment.attempts == 1  # the charge may have gone through: no second POST
    assert result.error is not None and "timeout after 0.5 s" in result.error
    assert payment.error is not None and "not retried: the POST" in payment.error


async def test_probe_traffic_is_marked(
    shop: DemoShopSettings, plans: dict[str, JourneyPlan], runner: JourneyRunner
) -> None:
    # A fault that only hits probes (user-agent token) breaks the probe, not a plain client.
    add_fault(
        shop,
        Service.SHOP,
        status=503,
        error_rate=1,
        only={"user_agent_contains": "JourneyLensProbe"},
    )
    result = await runner.run(plans["products-api"])
    assert result.error == "list-products: expected status 200, got 503"
    assert httpx.get(f"{shop.url(Service.SHOP)}/api/products").status_code == 200


def test_cli_once_runs_the_catalog(overrides: dict[str, str]) -> None:
    args = ["--once", "--no-publish", "--location", "local-1", "--catalog", str(CATALOG)]
    for name, value in overrides.items():
        args += ["--var", f"{name}={value}"]
    outcome = CliRunner().invoke(probe_command, [*args, "--journey", "checkout", "--json"])
    assert outcome.exit_code == 0, outcome.output
    result = SyntheticResult.model_validate_json(outcome.output.strip().splitlines()[-1])
    assert result.journey == "checkout" and result.status is RunStatus.PASSED
