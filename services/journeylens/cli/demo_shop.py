"""``journeylens demo-shop``: serve the demo shop and inject faults into its services."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from typing import Any, TypeVar

import click
import httpx

from journeylens.demo_shop.faults import ADMIN_PATH
from journeylens.demo_shop.server import serve
from journeylens.demo_shop.settings import DemoShopSettings, Service

SERVICES = [service.value for service in Service]
F = TypeVar("F", bound=Callable[..., Any])


@click.group("demo-shop")
def group() -> None:
    """The demo shop (shop, payment, CDN, SSO) on loopback, with fault injection."""


@group.command("serve")
@click.option("--host", help="Listen address [default 127.0.0.1].")
@click.option("--shop-port", type=int, help="[default 8600]")
@click.option("--payment-port", type=int, help="[default 8601]")
@click.option("--cdn-port", type=int, help="[default 8602]")
@click.option("--sso-port", type=int, help="[default 8603]")
@click.option("--collector-url", help="Where pages load rum.js [default http://127.0.0.1:8400].")
def serve_command(**options: Any) -> None:
    """Serve the four services in one process until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = DemoShopSettings(**{k: v for k, v in options.items() if v is not None})

    def ready() -> None:
        for service in Service:
            click.echo(f"demo {service.value:<8} {settings.url(service)}")
        click.echo(f"pages load rum.js from {settings.collector_url}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop, on_ready=ready)

    try:
        asyncio.run(main())
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@group.group("fault")
def fault() -> None:
    """Add, list or clear faults of the running demo services."""


def _service_option(required: bool) -> Callable[[F], F]:
    return click.option(
        "--service",
        "services",
        type=click.Choice(SERVICES),
        multiple=not required,
        required=required,
        help="Which service." if required else "Which services (repeatable) [default all].",
    )


def _admin_url(settings: DemoShopSettings, service: str) -> str:
    return settings.url(Service(service)) + ADMIN_PATH


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    try:
        response = httpx.request(method, url, json=body, timeout=5.0)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"{url}: {exc} (is `journeylens demo-shop serve` running?)"
        ) from None
    if response.status_code >= 400:
        raise click.ClickException(f"{url}: HTTP {response.status_code}: {response.text}")
    return response.json() if response.content else None


@fault.command("add")
@_service_option(required=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--error-rate", type=click.FloatRange(0, 1), help="[default 1 with --status, else 0]")
@click.option("--status", type=click.IntRange(400, 599), help="Error status [default 500].")
@click.option("--path-prefix", default="/", show_default=True)
@click.option("--country", help="Only requests from this country (CF-IPCountry header).")
@click.option("--device-class", type=click.Choice(["desktop", "mobile", "tablet"]))
@click.option("--user-agent-contains", help="Only these user agents (JourneyLensProbe: probes).")
def fault_add(
    services: str,
    latency_ms: float,
    error_rate: float | None,
    status: int | None,
    path_prefix: str,
    country: str | None,
    device_class: str | None,
    user_agent_contains: str | None,
) -> None:
    """Add a fault rule to one service."""
    if error_rate is None:
        error_rate = 1.0 if status is not None else 0.0
    only = {
        key: value
        for key, value in {
            "country": country,
            "device_class": device_class,
            "user_agent_contains": user_agent_contains,
        }.items()
        if value is not None
    }
    rule: dict[str, Any] = {
        "latency_ms": latency_ms,
        "error_rate": error_rate,
        "status": status or 500,
        "path_prefix": path_prefix,
        "only": only or None,
    }
    added = _call("POST", _admin_url(DemoShopSettings(), services), rule)
    click.echo(f"{services}: fault {added['id']} added {json.dumps(rule)}")


@fault.command("list")
@_service_option(required=False)
def fault_list(services: tuple[str, ...]) -> None:
    """List the fault rules of the services."""
    settings = DemoShopSettings()
    for service in services or SERVICES:
        listed = _call("GET", _admin_url(settings, service))
        for rule in listed["faults"]:
            click.echo(f"{service}: {json.dumps(rule)}")
        if not listed["faults"]:
            click.echo(f"{service}: no faults")


@fault.command("clear")
@_service_option(required=False)
@click.option("--id", "fault_id", help="Remove only this fault (with one --service).")
def fault_clear(services: tuple[str, ...], fault_id: str | None) -> None:
    """Remove the fault rules of the services (all by default)."""
    settings = DemoShopSettings()
    if fault_id is not None:
        if len(services) != 1:
            raise click.UsageError("--id needs exactly one --service")
        _call("DELETE", f"{_admin_url(settings, services[0])}/{fault_id}")
        click.echo(f"{services[0]}: fault {fault_id} removed")
        return
    for service in services or SERVICES:
        cleared = _call("DELETE", _admin_url(settings, service))
        click.echo(f"{service}: {cleared['cleared']} fault(s) cleared")
