"""``journeylens bench detection``: detection quality on simulated traffic, fake clock and live."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import orjson

from journeylens.contracts.catalog import CatalogError, load_catalog
from journeylens.settings import CatalogSettings
from journeylens.simulation.detection_bench import (
    BenchConfig,
    BenchReport,
    render_table,
    run_bench,
)
from journeylens.simulation.live_bench import (
    BASELINE_WARMUP_WINDOWS,
    LiveConfig,
    LiveResult,
    run_live,
    throwaway_services,
)
from journeylens.simulation.scenarios import BY_NAME
from journeylens.simulation.traffic import TrafficProfile
from journeylens.stack.process import tail


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
@click.option(
    "--live/--no-live",
    default=True,
    show_default=True,
    help="Also run one scenario in real time through Kafka (throw-away Kafka and ClickHouse, "
    "the real collector and worker processes; about 5 minutes with the defaults).",
)
@click.option("--live-only", is_flag=True, help="Run only the live scenario.")
@click.option(
    "--live-scenario",
    type=click.Choice(sorted(BY_NAME)),
    default=LiveConfig().scenario,
    show_default=True,
)
@click.option(
    "--live-window-s",
    type=click.IntRange(4, 60),
    default=LiveConfig().window_s,
    show_default=True,
    help="The worker's window in the live run (it stands for the minute window).",
)
@click.option(
    "--live-warmup-windows",
    type=click.IntRange(min=BASELINE_WARMUP_WINDOWS + 1),
    default=LiveConfig().warmup_windows,
    show_default=True,
    help=f"Real-time windows of steady traffic before the fault (the baselines learn "
    f"{BASELINE_WARMUP_WINDOWS} before they judge).",
)
@click.option(
    "--live-sessions-per-minute",
    type=click.FloatRange(min=60.0),
    default=LiveConfig().sessions_per_minute,
    show_default=True,
    help="Flat real-user traffic of the live run.",
)
def bench_detection(
    as_json: bool,
    hours: float,
    sessions_per_minute: float,
    seed: int,
    workers: int,
    scenarios: tuple[str, ...],
    live: bool,
    live_only: bool,
    live_scenario: str,
    live_window_s: int,
    live_warmup_windows: int,
    live_sessions_per_minute: float,
) -> None:
    """Steady noisy traffic for a day, then each incident scenario, through the real domain
    code on a fake clock; and one scenario in real time through Kafka, the collector and the
    worker. Reports time to detect, classification, alerts per incident, false alerts."""
    catalog_path = CatalogSettings().path
    try:
        catalog = load_catalog(catalog_path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    config = BenchConfig(
        warmup_hours=hours,
        seed=seed,
        profile=TrafficProfile(peak_sessions_per_minute=sessions_per_minute),
        scenarios=scenarios or BenchConfig().scenarios,
    )
    started = time.perf_counter()
    live_result = None
    if live or live_only:
        live_config = LiveConfig(
            scenario=live_scenario,
            window_s=live_window_s,
            grace_s=max(2, round(0.3 * live_window_s)),
            warmup_windows=live_warmup_windows,
            sessions_per_minute=live_sessions_per_minute,
            seed=seed,
        )
        live_result = _run_live(catalog_path, live_config)

    if live_only:
        report = BenchReport(config, None, [], time.perf_counter() - started, live_result)
    else:

        def progress(phase: str, done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            end = "\n" if done == total else ""
            sys.stderr.write(f"\r{phase}: {done}/{total} simulated minutes ({elapsed:.0f} s){end}")
            sys.stderr.flush()

        report = run_bench(catalog, config, progress, workers=workers)
        report.live = live_result
        report.seconds = time.perf_counter() - started
    if as_json:
        click.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_table(report))
    if not report.passed:
        sys.exit(1)


def _run_live(catalog_path: Path, config: LiveConfig) -> LiveResult:
    def progress(line: str) -> None:
        sys.stderr.write(f"live: {line}\n")
        sys.stderr.flush()

    with tempfile.TemporaryDirectory(prefix="jl-bench-live-") as tmp:
        work = Path(tmp)
        try:
            with throwaway_services(work, progress) as services:
                return run_live(catalog_path, config, services, work, progress)
        except (RuntimeError, TimeoutError) as exc:
            logs = "".join(
                f"\n--- {log.name} (last lines) ---\n{tail(log, 15)}"
                for log in sorted((work / "logs").glob("*.log"))
            )
            raise click.ClickException(f"the live run failed: {exc}{logs}") from exc
