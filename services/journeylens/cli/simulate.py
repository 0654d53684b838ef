"""``journeylens simulate``: realistic real-user traffic sent through the collector."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from journeylens.contracts.catalog import CatalogError, load_catalog
from journeylens.settings import CatalogSettings
from journeylens.simulation.live import LiveSimulator, LiveTarget


@click.command("simulate")
@click.option("--collector", default="http://127.0.0.1:8400", show_default=True)
@click.option("--shop", default="http://127.0.0.1:8600", show_default=True, help="Shop origin.")
@click.option("--payment", default="http://127.0.0.1:8601", show_default=True)
@click.option("--cdn", default="http://127.0.0.1:8602", show_default=True)
@click.option("--sso", default="http://127.0.0.1:8603", show_default=True)
@click.option("--sessions-per-minute", type=float, default=120.0, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
def command(
    collector: str,
    shop: str,
    payment: str,
    cdn: str,
    sso: str,
    sessions_per_minute: float,
    seed: int,
) -> None:
    """Send sessions walking the demo shop's funnels, as real browsers would, until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        catalog = load_catalog(CatalogSettings().path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    app = next((a for a in catalog.apps if a.id == "demo-shop"), None)
    if app is None:
        raise click.ClickException("the catalog has no app 'demo-shop' to send beacons for")
    target = LiveTarget(
        collector=collector.rstrip("/"),
        site_key=app.site_key,
        # The simulated browsers are on the site itself: send its (allowed) origin.
        origin=next((o for o in app.allowed_origins if o != "*"), shop.rstrip("/")),
        shop_services={"shop": shop, "payment": payment, "cdn": cdn, "sso": sso},
    )
    simulator = LiveSimulator(catalog, target, sessions_per_minute, seed)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await simulator.run(stop)

    asyncio.run(main())
    click.echo(f"sent {simulator.sent} requests, {simulator.rejected} not accepted")
