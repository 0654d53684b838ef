"""``journeylens drill <scenario>``: break the running demo shop on purpose."""

from __future__ import annotations

import click
import httpx

from journeylens.demo_shop.drills import DRILLS
from journeylens.demo_shop.faults import ADMIN_PATH
from journeylens.demo_shop.settings import DemoShopSettings, Service


@click.command("drill")
@click.argument("scenario", required=False, type=click.Choice(sorted(DRILLS)))
@click.option("--list", "list_", is_flag=True, help="Explain each drill.")
@click.option("--clear", is_flag=True, help="Remove every fault from the demo services.")
def command(scenario: str | None, list_: bool, clear: bool) -> None:
    """Inject a named incident into the running demo shop (see --list), or --clear it."""
    if list_ or (scenario is None and not clear):
        for drill in DRILLS.values():
            click.echo(f"{drill.name}\n  {drill.description}\n  expect: {drill.expected}\n")
        return
    settings = DemoShopSettings()
    try:
        with httpx.Client(timeout=5.0) as client:
            if clear:
                for service in Service:
                    client.delete(settings.url(service) + ADMIN_PATH).raise_for_status()
                click.echo("all faults cleared")
                return
            assert scenario is not None
            drill = DRILLS[scenario]
            for service, rule in drill.faults:
                url = settings.url(service) + ADMIN_PATH
                client.post(url, json=rule.model_dump(exclude_none=True)).raise_for_status()
                click.echo(f"{service.value}: fault added {rule.model_dump(exclude_defaults=True)}")
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the demo shop did not answer ({exc}); start it with `journeylens up` "
            "(or `journeylens demo-shop serve`) first"
        ) from exc
    click.echo(f"drill {drill.name} running — expect: {drill.expected}")
    click.echo("undo with `journeylens drill --clear`")
