"""``journeylens api``: the query API and dashboard; ``journeylens bench api``: its benchmark."""

from __future__ import annotations

import json

import click

from journeylens.api.cache import DEFAULT_TTL_S
from journeylens.api.db import DEFAULT_MAX_CLIENTS
from journeylens.settings import ApiSettings, CatalogSettings, ClickHouseSettings, StackSettings


@click.command("api")
@click.option("--host", default=None, help="Listen address (default JOURNEYLENS_API_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default JOURNEYLENS_API_PORT).")
@click.option(
    "--cache-ttl",
    type=click.FloatRange(min=0),
    default=DEFAULT_TTL_S,
    show_default=True,
    help="Seconds journey health and timeseries answers are reused (0: never).",
)
@click.option(
    "--max-queries",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CLIENTS,
    show_default=True,
    help="ClickHouse queries run at once (the client pool's size); more requests queue.",
)
def command(host: str | None, port: int | None, cache_ttl: float, max_queries: int) -> None:
    """Serve the query API (/api/v1, OpenAPI at /docs) and the dashboard (/)."""
    import uvicorn

    from journeylens.api.app import create_app
    from journeylens.contracts.catalog import CatalogError, load_catalog
    from journeylens.stack.local import resolve_clickhouse_dsn
    from journeylens.storage.client import ConfigError, parse_dsn

    settings = ApiSettings()
    try:
        catalog = load_catalog(CatalogSettings().path)
        dsn = resolve_clickhouse_dsn(ClickHouseSettings(), StackSettings())
        target = parse_dsn(dsn)
    except (CatalogError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.token_hashes and settings.dev_token is None:
        click.echo(
            "warning: no JOURNEYLENS_API_TOKEN_HASHES nor JOURNEYLENS_API_DEV_TOKEN: every API "
            "request will be refused (401)",
            err=True,
        )
    app = create_app(settings, dsn, catalog, cache_ttl_s=cache_ttl, max_queries=max_queries)
    bind_host = host or settings.host
    bind_port = port if port is not None else settings.port
    click.echo(f"JourneyLens API on http://{bind_host}:{bind_port}/ (ClickHouse {target.masked()})")
    uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning", access_log=False)


@click.command("api")
@click.option("--rows", type=int, default=10_000_000, show_default=True, help="Raw RUM events.")
@click.option(
    "--aggregate-rows", type=int, default=None, help="Aggregate rows (default rows / 10)."
)
@click.option("--clients", type=int, default=20, show_default=True)
@click.option("--requests", type=int, default=400, show_default=True, help="Requests per scenario.")
@click.option(
    "--dsn", default=None, help="http:// DSN of a ClickHouse server (default: start a local one)."
)
@click.option(
    "--cache-ttl",
    type=click.FloatRange(min=0),
    default=DEFAULT_TTL_S,
    show_default=True,
    help="The API's --cache-ttl (0: every request queries ClickHouse).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bench_api(
    rows: int,
    aggregate_rows: int | None,
    clients: int,
    requests: int,
    dsn: str | None,
    cache_ttl: float,
    as_json: bool,
) -> None:
    """Load 10M RUM events and 1M aggregates, then time 20 concurrent API clients."""
    from journeylens.api.bench import BenchConfig, run_bench

    config = BenchConfig(
        rows=rows,
        aggregate_rows=aggregate_rows if aggregate_rows is not None else max(1, rows // 10),
        clients=clients,
        requests=requests,
        dsn=dsn,
        catalog_path=CatalogSettings().path,
        cache_ttl_s=cache_ttl,
    )
    progress = (lambda line: click.echo(f"  {line}", err=True)) if not as_json else None
    try:
        report = run_bench(config, progress)
    except (RuntimeError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render_report(report))


def render_report(report: dict[str, object]) -> str:
    data = report["data"]
    assert isinstance(data, dict)
    lines = [
        f"data: {data['rum_events']:,} RUM events, {data['journey_aggregates']:,} aggregate rows "
        f"loaded in {data['load_s']:.1f}s; {report['clients']} clients; API answer cache "
        f"{report['cache_ttl_s']} s",
        f"{'endpoint':<12} {'range':<8} {'requests':>8} {'errors':>6} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'target':>8}  ok",
    ]
    results = report["results"]
    assert isinstance(results, list)
    for r in results:
        lines.append(
            f"{r['endpoint']:<12} {r['range']:<8} {r['requests']:>8} {r['errors']:>6} "
            f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['target_p95_ms']:>8.0f}  "
            f"{'yes' if r['ok'] else 'NO'}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # the bench starts the API as ``python -m journeylens.cli.api``
    command()
