"""The ``journeylens`` command: one sub-command per module."""

from __future__ import annotations

import click

from journeylens import __version__
from journeylens.cli import demo_shop, probe, schemas, stack, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="journeylens")
def cli() -> None:
    """JourneyLens: synthetic probes + real-user monitoring, correlated per journey."""


cli.add_command(schemas.group)
cli.add_command(stack.group)
cli.add_command(stack.migrate_command)
cli.add_command(stack.topics_group)
cli.add_command(worker.command)
cli.add_command(probe.command)
cli.add_command(demo_shop.group)


def main() -> None:
    cli()
