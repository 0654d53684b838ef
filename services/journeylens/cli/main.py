"""The ``journeylens`` command: one sub-command per module."""

from __future__ import annotations

import click

from journeylens import __version__
from journeylens.cli import (
    api,
    collector,
    demo_shop,
    drill,
    probe,
    schemas,
    simulate,
    stack,
    worker,
)
from journeylens.cli.bench_detection import bench_detection
from journeylens.collector.bench import bench_collector
from journeylens.processor.bench import bench_worker


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
cli.add_command(collector.command)
cli.add_command(api.command)
cli.add_command(drill.command)
cli.add_command(simulate.command)
cli.add_command(stack.up_command)


@cli.group("bench")
def bench() -> None:
    """Benchmarks that print their figures and the ratio to a baseline measured in the same run."""


bench.add_command(bench_collector, "collector")
bench.add_command(api.bench_api, "api")
bench.add_command(bench_worker, "worker")
bench.add_command(bench_detection, "detection")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
