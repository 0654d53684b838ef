"""``journeylens probe``: replay the catalog's journeys from one location and publish results."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import click

from journeylens.contracts.catalog import CatalogError
from journeylens.contracts.synthetic_results_v1 import RunStatus, SyntheticResult
from journeylens.settings import CatalogSettings, KafkaSettings, ProbeSettings
from journeylens.synthetic.browser_step import BrowserSession
from journeylens.synthetic.plan import JourneyPlan, for_location, load_plans
from journeylens.synthetic.publisher import KafkaResultPublisher, ResultSink, result_value
from journeylens.synthetic.runner import JourneyRunner
from journeylens.synthetic.scheduler import ProbeScheduler

log = logging.getLogger("journeylens.probe")


def parse_variables(pairs: tuple[str, ...]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        variables[name.strip()] = value
    return variables


class _PrintSink:
    """Prints each result (JSON or one line) and forwards it to the next sink, if any."""

    def __init__(self, as_json: bool, forward: ResultSink | None) -> None:
        self.as_json = as_json
        self.forward = forward

    async def publish(self, result: SyntheticResult) -> None:
        if self.as_json:
            click.echo(result_value(result).decode())
        else:
            click.echo(_summary(result))
        if self.forward is not None:
            await self.forward.publish(result)


def _summary(result: SyntheticResult) -> str:
    steps = ", ".join(f"{s.step}={s.status.value}:{s.duration_ms:.0f}ms" for s in result.steps)
    line = f"{result.journey} @ {result.location}: {result.status.value} in "
    line += f"{result.duration_ms:.0f} ms [{steps}]"
    return line + (f" — {result.error}" if result.error else "")


def _select(
    plans: list[JourneyPlan], journeys: tuple[str, ...], location: str
) -> list[JourneyPlan]:
    if not journeys:
        return for_location(plans, location)
    by_id = {plan.journey_id: plan for plan in plans}
    unknown = sorted(set(journeys) - set(by_id))
    if unknown:
        raise click.UsageError(
            f"no runnable journey {', '.join(map(repr, unknown))} "
            f"(runnable: {', '.join(sorted(by_id)) or 'none'})"
        )
    return [by_id[journey] for journey in journeys]


@click.command("probe")
@click.option("--location", help="This probe's location name [env JOURNEYLENS_PROBE_LOCATION].")
@click.option("--once", is_flag=True, help="Run each journey once, then exit (1 if one failed).")
@click.option(
    "--journey", "journeys", multiple=True, help="Only this journey (repeatable; any location)."
)
@click.option(
    "--var", "variables", multiple=True, metavar="NAME=VALUE", help="Override a variable."
)
@click.option(
    "--catalog",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Journey catalog YAML [env JOURNEYLENS_CATALOG_PATH].",
)
@click.option(
    "--publish/--no-publish", default=True, show_default=True, help="Send results to Kafka."
)
@click.option("--json", "as_json", is_flag=True, help="Print each result as JSON.")
def command(
    location: str | None,
    once: bool,
    journeys: tuple[str, ...],
    variables: tuple[str, ...],
    catalog: Path | None,
    publish: bool,
    as_json: bool,
) -> None:
    """Replay the catalog's journeys (HTTP and browser) from one location."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe request is noise
    probe = ProbeSettings()
    if location:
        probe = probe.model_copy(update={"location": location})
    catalog_path = catalog or CatalogSettings().path
    try:
        loaded = load_plans(catalog_path, parse_variables(variables))
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in loaded.problems:
        click.echo(f"skipped (invalid): {problem}", err=True)
    plans = _select(loaded.plans, journeys, probe.location)
    if not plans:
        raise click.ClickException(f"no valid journey to probe from location {probe.location!r}")
    kafka = KafkaSettings() if publish else None
    code = asyncio.run(_run(plans, probe, kafka, once=once, as_json=as_json))
    sys.exit(code)


async def _run(
    plans: list[JourneyPlan],
    probe: ProbeSettings,
    kafka: KafkaSettings | None,
    *,
    once: bool,
    as_json: bool,
) -> int:
    browser = BrowserSession(probe.chromium_path) if any(p.uses_browser for p in plans) else None
    runner = JourneyRunner.from_settings(probe, browser)
    async with contextlib.AsyncExitStack() as stack:
        forward: ResultSink | None = None
        if kafka is not None:
            forward = await stack.enter_async_context(KafkaResultPublisher(kafka))
        if browser is not None:
            stack.push_async_callback(browser.close)
        scheduler = ProbeScheduler(
            plans, runner, _PrintSink(as_json, forward), jitter_fraction=probe.jitter_fraction
        )
        if once:
            results = await scheduler.run_once()
            return 0 if all(r.status is RunStatus.PASSED for r in results) else 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "probing %d journey(s) from %s: %s",
            len(plans),
            probe.location,
            ", ".join(p.journey_id for p in plans),
        )
        await scheduler.run_forever(stop)
        log.info("probe stopped")
    return 0
