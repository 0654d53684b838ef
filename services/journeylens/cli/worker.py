"""``journeylens worker``: the Faust stream processor."""

from __future__ import annotations

import click

from journeylens.contracts.catalog import CatalogError, load_catalog
from journeylens.settings import (
    CatalogSettings,
    ClickHouseSettings,
    KafkaSettings,
    StackSettings,
    WorkerSettings,
)
from journeylens.stack.local import resolve_clickhouse_dsn


@click.command("worker")
@click.option("--loglevel", default="warning", show_default=True)
def command(loglevel: str) -> None:
    """Join RUM and synthetic by journey and window; aggregates, anomalies and alerts."""
    from journeylens.processor.main import build_worker, run_worker

    try:
        catalog = load_catalog(CatalogSettings().path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    dsn = resolve_clickhouse_dsn(ClickHouseSettings(), StackSettings())
    app, _agent = build_worker(WorkerSettings(), KafkaSettings(), catalog, dsn)
    run_worker(app, loglevel)
