"""``journeylens stack up|down|status`` and ``journeylens migrate``."""

from __future__ import annotations

import asyncio
import time

import click

from journeylens.settings import ClickHouseSettings, KafkaSettings, StackSettings
from journeylens.stack.local import LocalStack, migrate
from journeylens.stack.topics import ensure_topics, load_topic_specs


def _progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


def build_stack() -> LocalStack:
    return LocalStack(StackSettings(), KafkaSettings(), ClickHouseSettings())


@click.group("stack")
def group() -> None:
    """The local real components: a Kafka broker (KRaft) and a ClickHouse server."""


@group.command("up")
def up() -> None:
    """Start Kafka and ClickHouse (or reuse running ones), create topics and migrate."""
    stack = build_stack()
    started = time.monotonic()
    click.echo("starting the local stack (Kafka, ClickHouse) …", err=True)
    try:
        stack.up(_progress)
    except (RuntimeError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"stack ready in {time.monotonic() - started:.1f}s")
    click.echo(f"  JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS={stack.broker.bootstrap_servers}")
    click.echo(f"  JOURNEYLENS_CLICKHOUSE_DSN={stack.server.http_dsn}")


@group.command("fetch")
def fetch() -> None:
    """Resolve the pinned Kafka broker jars from Maven Central into the cache (once)."""
    try:
        libs = build_stack().broker.ensure_jars(_progress)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Kafka jars in {libs}")


@group.command("down")
def down() -> None:
    """Stop the local Kafka and ClickHouse cleanly."""
    build_stack().down(_progress)
    click.echo("stack stopped")


@group.command("status")
def status() -> None:
    """Report whether each local component runs, and where."""
    statuses = build_stack().status()
    for item in statuses:
        state = "running" if item.running else "stopped"
        pid = f" pid {item.pid}" if item.pid else ""
        click.echo(
            f"{item.name:<11} {state:<8}{pid:<12} {item.address or '-'} {item.detail}".rstrip()
        )
    if not all(item.running for item in statuses):
        raise SystemExit(3)


@click.command("migrate")
def migrate_command() -> None:
    """Apply the ClickHouse migrations not applied yet (safe to run twice)."""
    stack = build_stack()
    try:
        applied = migrate(stack.clickhouse_dsn(), _progress)
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for label in applied:
        click.echo(f"applied {label}")
    click.echo(f"{len(applied)} migration(s) applied")


@click.group("topics")
def topics_group() -> None:
    """Kafka topics described by schemas/topics/*.yaml."""


@topics_group.command("ensure")
def topics_ensure() -> None:
    """Create the missing topics on the configured Kafka (JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS)."""
    kafka = KafkaSettings()
    try:
        report = asyncio.run(ensure_topics(kafka, load_topic_specs(), _progress))
    except (RuntimeError, ValueError, OSError) as exc:
        raise click.ClickException(
            f"{exc} (is Kafka reachable at {kafka.bootstrap_servers}? "
            "set JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS)"
        ) from exc
    for name, (want, have) in report.partition_mismatch.items():
        click.echo(f"warning: {name} has {have} partitions, the contract says {want}", err=True)
    click.echo(f"{len(report.created)} topic(s) created, {len(report.existing)} already there")


@click.command("up")
@click.option("--no-simulator", is_flag=True, help="Do not send simulated real-user traffic.")
@click.option("--no-probe", is_flag=True, help="Do not run the synthetic probe.")
@click.option("--sessions-per-minute", type=int, default=120, show_default=True)
def up_command(no_simulator: bool, no_probe: bool, sessions_per_minute: int) -> None:
    """Start everything on this machine (stack, demo shop, collector, worker, API, probe,
    simulator), print the dashboard URL, and stop it all on Ctrl-C."""
    from journeylens.demo_shop.settings import DemoShopSettings
    from journeylens.settings import ApiSettings, CollectorSettings
    from journeylens.stack.up import Ports, UpPlan, run_up

    shop = DemoShopSettings()
    ports = Ports(
        collector=CollectorSettings().port,
        api=ApiSettings().port,
        shop=shop.shop_port,
        payment=shop.payment_port,
        cdn=shop.cdn_port,
        sso=shop.sso_port,
    )
    plan = UpPlan(
        build_stack(),
        ports=ports,
        simulator=not no_simulator,
        probe=not no_probe,
        sessions_per_minute=sessions_per_minute,
    )
    try:
        code = run_up(plan, _progress, click.echo)
    except (RuntimeError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    raise SystemExit(code)
