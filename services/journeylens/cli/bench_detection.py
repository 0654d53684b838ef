"""``journeylens bench detection``: detection quality on simulated traffic, fake clock."""

from __future__ import annotations

import sys
import time

import click
import orjson

from journeylens.contracts.catalog import CatalogError, load_catalog
from journeylens.settings import CatalogSettings
from journeylens.simulation.detection_bench import BenchConfig, render_table, run_bench
from journeylens.simulation.scenarios import BY_NAME
from journeylens.simulation.traffic import TrafficProfile


@click.command("detection")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--hours",
    type=click.FloatRange(min=1.0),
    default=24.0,
    show_default=True,
    help="Simulated hours of steady traffic (also the warm-up before each scenario).",
)
@click.option(
    "--sessions-per-minute",
    type=click.FloatRange(min=10.0),
    default=TrafficProfile().peak_sessions_per_minute,
    show_default=True,
    help="Sessions arriving per minute at the evening peak (the night trough is 30% of it).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Processes: the journeys are split over them like the worker's partitions.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(sorted(BY_NAME)),
    help="Run only these scenarios (repeatable); default: all.",
)
def bench_detection(
    as_json: bool,
    hours: float,
    sessions_per_minute: float,
    seed: int,
    workers: int,
    scenarios: tuple[str, ...],
) -> None:
    """Steady noisy traffic for a day, then each incident scenario, through the real domain
    code on a fake clock: time to detect, classification, alerts per incident, false alerts."""
    try:
        catalog = load_catalog(CatalogSettings().path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    config = BenchConfig(
        warmup_hours=hours,
        seed=seed,
        profile=TrafficProfile(peak_sessions_per_minute=sessions_per_minute),
        scenarios=scenarios or BenchConfig().scenarios,
    )
    started = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r{phase}: {done}/{total} simulated minutes ({elapsed:.0f} s){end}")
        sys.stderr.flush()

    report = run_bench(catalog, config, progress, workers=workers)
    if as_json:
        click.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_table(report))
    if not report.passed:
        sys.exit(1)
