"""``journeylens collector``: run the RUM collector (uvicorn with uvloop + httptools)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import click
from fastapi import FastAPI
from pydantic import Field

from journeylens.contracts.catalog import CatalogError, load_catalog
from journeylens.settings import CatalogSettings, CollectorSettings, KafkaSettings

AGENT_JS_ENV = "JOURNEYLENS_COLLECTOR_AGENT_JS"


class ServeSettings(CollectorSettings):
    """CollectorSettings plus what only the server process needs."""

    agent_js: Path | None = Field(
        default=None,
        description="The built browser agent served as /rum.js (default: sdk/browser/dist).",
    )


def build_app(
    settings: ServeSettings | None = None,
    kafka: KafkaSettings | None = None,
    catalog_settings: CatalogSettings | None = None,
) -> FastAPI:
    """The collector app with its Kafka sink, from settings (built here when not given).

    This is also the uvicorn factory each worker process calls (``--workers`` > 1): the entry
    point of that process, so it builds its settings from the environment.
    """
    from journeylens.collector.app import create_app
    from journeylens.collector.sink import KafkaSink

    settings = settings or ServeSettings()
    kafka = kafka or KafkaSettings()
    catalog = load_catalog((catalog_settings or CatalogSettings()).path)
    sink = KafkaSink(kafka, settings)
    app = create_app(settings, catalog, sink, agent_path=settings.agent_js)
    # Beacons are many short-lived objects kept until Kafka acknowledges them: with the
    # default thresholds the cyclic GC rescans them often (~10 µs a beacon under load).
    # Start-up objects are frozen out of its scans; collections run less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    return app


@click.command("collector")
@click.option("--host", default=None, help="Interface to bind (default: settings, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: settings, 8400).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--agent-js",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Built rum.js to serve (default: sdk/browser/dist/rum.js).",
)
@click.option("--log-level", default="info", show_default=True)
def command(
    host: str | None, port: int | None, workers: int, agent_js: Path | None, log_level: str
) -> None:
    """Run the collector: RUM beacons in six formats → Kafka rum.beacons.v1."""
    import uvicorn

    overrides: dict[str, object] = {}
    if agent_js is not None:
        overrides["agent_js"] = agent_js.resolve()
    settings = ServeSettings(**overrides)  # type: ignore[arg-type]
    bind_host = host or settings.host
    bind_port = port or settings.port
    catalog_settings = CatalogSettings()
    try:
        load_catalog(catalog_settings.path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    server_options: dict[str, object] = {
        "host": bind_host,
        "port": bind_port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": log_level,
        "access_log": False,
        "server_header": False,
        "backlog": 4096,
    }
    click.echo(f"collector on http://{bind_host}:{bind_port} ({workers} worker(s))", err=True)
    if workers == 1:
        app = build_app(settings, KafkaSettings(), catalog_settings)
        uvicorn.run(app, **server_options)  # type: ignore[arg-type]
        return
    if agent_js is not None:
        os.environ[AGENT_JS_ENV] = str(agent_js.resolve())  # inherited by the workers
    uvicorn.run(
        "journeylens.cli.collector:build_app",
        factory=True,
        workers=workers,
        **server_options,  # type: ignore[arg-type]
    )
