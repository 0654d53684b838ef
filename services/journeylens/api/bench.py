"""``journeylens bench api``: how fast the API answers over a realistic volume.

1. ClickHouse: the server of ``--dsn`` (http) or a local one started on free loopback ports
   in a temporary data directory. A fresh database, migrated.
2. Data, generated server-side (INSERT ... SELECT FROM numbers()): ``rows`` raw RUM events
   over 30 days (5 journeys of the catalog, their steps, countries, devices, browsers,
   connection types; log-normal vitals, slower on mobile) and ``aggregate_rows`` rows of
   journey_aggregates (1-minute windows ending now: journey level, two steps, a country and a
   device segment per window). The rollup MVs of migrations 0004 and 0005 fill as it goes.
3. The API as a uvicorn subprocess (``python -m journeylens.cli.api --cache-ttl ...``) on a
   free port; ``cache_ttl_s = 0`` measures every request going to ClickHouse.
4. ``clients`` concurrent keep-alive HTTP/1.1 clients (asyncio streams, one connection each,
   closed loop) in a separate process (``python -m journeylens.api.bench load``), ``requests``
   requests per scenario: journey health, the timeseries over 24 h and over 30 days (``to`` =
   now, so every request has its own range). p50/p95 per scenario against the targets (p95 <=
   100 ms for health and 24 h, <= 300 ms for 30 days).

   Each scenario starts with its answers out of the API's cache: the warm-up request of each
   connection (`WARM_UP`) neither queries ClickHouse nor fills the cache. (It used to send one
   of the scenario's own requests per connection, which put most of the scenario's answers in
   the cache before the clock started.) A scenario's 400 requests take well under the cache's
   5 s, so its p95 is that of a cold start: every answer queried once, under the full load of
   the 20 clients, as at every minute in production, when the minute-quantized ranges move on.

Everything is bound to 127.0.0.1 and torn down at the end (database dropped, processes stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from journeylens.api.cache import DEFAULT_TTL_S
from journeylens.contracts.catalog import load_catalog
from journeylens.stack.process import free_port, wait_until
from journeylens.stack.throwaway import throwaway_clickhouse
from journeylens.storage.client import ClickHouseTarget, Client, client_for, parse_dsn
from journeylens.storage.migrations import apply_migrations

Progress = Callable[[str], None] | None
HOST = "127.0.0.1"
TOKEN_ENV = "JOURNEYLENS_BENCH_TOKEN"  # noqa: S105 - the name of an env variable
METRICS = ("rum.lcp_ms.p75", "rum.error_rate", "synthetic.availability", "rum.apdex")
TARGETS_MS = {"health": 100.0, "24h": 100.0, "30d": 300.0}
SPAN = timedelta(days=30)


@dataclass(frozen=True)
class BenchConfig:
    rows: int = 10_000_000
    aggregate_rows: int = 1_000_000
    clients: int = 20
    requests: int = 400
    dsn: str | None = None
    catalog_path: Path = Path("infra/catalog/demo-shop.yaml")
    journeys: int = 5
    cache_ttl_s: float = DEFAULT_TTL_S


def _say(progress: Progress, line: str) -> None:
    if progress is not None:
        progress(line)


# ------------------------------------------------------------------------------ ClickHouse


@contextlib.contextmanager
def clickhouse(dsn: str | None, progress: Progress) -> Iterator[ClickHouseTarget]:
    """The server of ``dsn``, or a local one in a temporary directory for the duration."""
    if dsn is not None:
        target = parse_dsn(dsn)
        if target.embedded:
            raise ValueError("the API bench needs an http(s):// DSN (several processes)")
        yield target
        return
    with (
        tempfile.TemporaryDirectory(prefix="journeylens-bench-") as data_dir,
        throwaway_clickhouse(Path(data_dir), lambda line: _say(progress, line)) as server,
    ):
        yield parse_dsn(server.http_dsn)


# ------------------------------------------------------------------------------------ data

RUM_SQL = """
INSERT INTO rum_events (event_id, kind, source, timestamp, received_at, app, journey, step,
    session_id, page_id, url, path, navigation_type, vitals_lcp_ms, vitals_inp_ms, vitals_cls,
    vitals_fcp_ms, vitals_ttfb_ms, context_device_class, context_browser, context_os,
    context_connection_type, context_country, synthetic, sample_rate, schema_version)
SELECT
    concat('bench-', toString(number)) AS event_id,
    'page_view', 'journeylens',
    {end:DateTime64(3, 'UTC')} - toIntervalMillisecond(intHash64(number) % {span_ms:UInt64}) AS ts,
    ts, 'demo-shop',
    {journeys:Array(String)}[number % length({journeys:Array(String)}) + 1] AS journey,
    arrayElement({steps:Array(Array(String))}[number % length({journeys:Array(String)}) + 1],
        cityHash64(number, 1) % length(
            {steps:Array(Array(String))}[number % length({journeys:Array(String)}) + 1]) + 1),
    concat('s', toString(cityHash64(number, 2) % 500000)),
    concat('p', toString(number)),
    'https://shop.example.com/x', '/x', 'navigate',
    randLogNormal(7.4, 0.45) * slow,
    randLogNormal(4.5, 0.6) * slow,
    randExponential(25),
    randLogNormal(7.0, 0.4) * slow,
    randLogNormal(5.8, 0.5),
    device,
    ['Chrome', 'Safari', 'Firefox', 'Edge'][cityHash64(number, 4) % 4 + 1],
    ['Windows', 'macOS', 'Android', 'iOS', 'Linux'][cityHash64(number, 5) % 5 + 1],
    ['4g', 'wifi', '3g', 'ethernet'][cityHash64(number, 6) % 4 + 1],
    ['FR', 'DE', 'US', 'GB', 'ES', 'IT', 'NL', 'BR'][cityHash64(number, 7) % 8 + 1],
    false, 1.0, 1
FROM
(
    SELECT number,
           ['desktop', 'mobile', 'tablet'][cityHash64(number, 3) % 3 + 1] AS device,
           if(device = 'mobile', 1.35, 1.0) AS slow
    FROM numbers({rows:UInt64})
)
"""

AGGREGATES_SQL = """
INSERT INTO journey_aggregates (aggregate_id, journey, step, window_start, window_end,
    segment_dimension, segment_value, rum_page_views, rum_sampled_views, rum_sessions,
    rum_lcp_ms_count, rum_lcp_ms_p50, rum_lcp_ms_p75, rum_lcp_ms_p95,
    rum_inp_ms_count, rum_inp_ms_p75, rum_cls_count, rum_cls_p75,
    rum_ttfb_ms_count, rum_ttfb_ms_p75, rum_duration_ms_count, rum_duration_ms_p75,
    rum_js_errors, rum_views_with_error, rum_error_rate, rum_apdex, rum_apdex_t_ms,
    rum_satisfied, rum_tolerating, rum_frustrated,
    synthetic_runs, synthetic_failures, synthetic_availability,
    funnel_sessions_entered, funnel_sessions_completed, funnel_completion_rate,
    status, scope, reasons, schema_version)
SELECT
    concat(journey, '|', step, '|', toString(ws), '|', dim, '|', val),
    journey, step, ws, ws + toIntervalMinute(1), dim, val,
    views, views, intDiv(views, 2),
    views, lcp * 0.8, lcp, lcp * 1.6,
    views, 90 + cityHash64(number, 3) % 80, views, 0.02 + (cityHash64(number, 4) % 10) / 100,
    views, 300 + cityHash64(number, 5) % 300, views, lcp * 1.2,
    errors, errors, errors / views, (sat + tol / 2) / views, 1000,
    sat, tol, views - sat - tol,
    runs, failures, if(runs = 0, NULL, (runs - failures) / runs),
    intDiv(views, 2), intDiv(views, 5), 0.4,
    if(lcp > 2500 OR failures > 0, 'degraded', 'healthy'),
    if(failures > 0, 'confirmed', 'none'),
    if(lcp > 2500, ['rum.lcp_ms.p75 above threshold'], []),
    1
FROM
(
    SELECT
        number,
        number % 5 AS slot,
        intDiv(number, 5) AS w,
        w % length({journeys:Array(String)}) + 1 AS j,
        intDiv(w, length({journeys:Array(String)})) AS m,
        {journeys:Array(String)}[j] AS journey,
        {steps:Array(Array(String))}[j] AS js,
        multiIf(slot = 1, js[1], slot = 2, js[least(2, length(js))], '_journey') AS step,
        multiIf(slot = 3, 'country', slot = 4, 'device_class', 'all') AS dim,
        multiIf(slot = 3, ['FR', 'DE'][m % 2 + 1], slot = 4, ['mobile', 'desktop'][m % 2 + 1],
                'all') AS val,
        toStartOfMinute({end:DateTime64(3, 'UTC')}) - toIntervalMinute(m) AS ws,
        toUInt64(50 + cityHash64(number, 1) % 150) AS views,
        1900 + 500 * sin(m / 240) + cityHash64(number, 2) % 400 AS lcp,
        toUInt64(cityHash64(number, 6) % 6) AS errors,
        toUInt64(views * 0.75) AS sat,
        toUInt64(views * 0.15) AS tol,
        toUInt64(if(slot = 0, 2, 0)) AS runs,
        toUInt64(if(runs > 0 AND cityHash64(number, 7) % 100 < 3, 1, 0)) AS failures
    FROM numbers({rows:UInt64})
)
"""


def load(client: Client, config: BenchConfig, end: datetime, progress: Progress) -> float:
    catalog = load_catalog(config.catalog_path)
    chosen = catalog.journeys[: config.journeys]
    params: dict[str, Any] = {
        "journeys": [j.id for j in chosen],
        "steps": [[s.id for s in j.steps] for j in chosen],
        "end": end.strftime("%Y-%m-%d %H:%M:%S.000"),
        "span_ms": int(SPAN.total_seconds() * 1000),
    }
    started = time.monotonic()
    _say(progress, f"loading {config.rows:,} RUM events (server-side) …")
    client.command(RUM_SQL, parameters={**params, "rows": config.rows})
    _say(progress, f"  done in {time.monotonic() - started:.1f}s")
    mark = time.monotonic()
    _say(progress, f"loading {config.aggregate_rows:,} aggregate rows …")
    # small insert blocks, as the processor's sink writes them (the rollup MVs' maxMap states
    # of a block live in memory until the block is written)
    client.command(
        AGGREGATES_SQL,
        parameters={**params, "rows": config.aggregate_rows},
        settings={
            "max_block_size": 20_000,
            "max_insert_block_size": 20_000,
            "min_insert_block_size_rows": 20_000,
            "max_threads": 2,
        },
    )
    _say(progress, f"  done in {time.monotonic() - mark:.1f}s")
    return time.monotonic() - started


# ------------------------------------------------------------------------------------- API


@contextlib.contextmanager
def api_process(target: ClickHouseTarget, config: BenchConfig, token: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "JOURNEYLENS_CLICKHOUSE_DSN": target.dsn(),
        "JOURNEYLENS_API_TOKEN_HASHES": hashlib.sha256(token.encode()).hexdigest(),
        "JOURNEYLENS_CATALOG_PATH": str(config.catalog_path.resolve()),
    }
    env.pop("JOURNEYLENS_API_DEV_TOKEN", None)
    argv = [
        sys.executable, "-m", "journeylens.cli.api", "--host", HOST, "--port", str(port),
        "--cache-ttl", str(config.cache_ttl_s),
    ]  # fmt: skip
    child = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    url = f"http://{HOST}:{port}"
    try:
        wait_until(lambda: _answers(url, child), 60.0, "the API to answer")
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


def _answers(url: str, child: subprocess.Popen[bytes]) -> bool:
    import httpx

    if child.poll() is not None:
        raise RuntimeError(f"the API process exited with {child.returncode}")
    try:
        return httpx.get(url + "/openapi.json", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------------- clients


Request = tuple[str, dict[str, str]]
MakeRequest = Callable[[random.Random], Request]
# Opens a connection and runs the API's request path (auth, routing, problem answer) without
# ClickHouse or the answer cache: a warm-up with a scenario's own requests would fill the cache
# with the very answers the scenario then measures.
WARM_UP: Request = ("/api/v1/journeys/_warm-up/timeseries", {})


def scenarios(journeys: list[str]) -> dict[str, MakeRequest]:
    def health(_rng: random.Random) -> Request:
        return "/api/v1/journeys", {}

    def series(hours: int) -> MakeRequest:
        def make(rng: random.Random) -> Request:
            now = datetime.now(UTC)
            start = now - timedelta(hours=hours)
            params = {
                "metric": rng.choice(METRICS),
                "from": start.isoformat(),
                "to": now.isoformat(),
            }
            return f"/api/v1/journeys/{rng.choice(journeys)}/timeseries", params

        return make

    return {"health": health, "24h": series(24), "30d": series(24 * 30)}


class Connection:
    """One keep-alive HTTP/1.1 connection: GET, then the whole body (Content-Length).

    The load generator shares the machine with the API and ClickHouse, so it must cost little:
    httpx spends ~2 ms of CPU per request, this ~0.2 ms. Latency is measured the same way, from
    writing the request to having read the last byte of the answer.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._head = f"Host: {host}:{port}\r\n{extra}\r\n"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        target = f"{path}?{urlencode(params)}" if params else path
        writer.write(f"GET {target} HTTP/1.1\r\n{self._head}".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        if "content-length" not in fields:
            raise RuntimeError(f"no Content-Length in the answer to {path}")
        body = await reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _drive(
    url: str, token: str, journeys: list[str], clients: int, requests: int
) -> dict[str, dict[str, Any]]:
    parsed = urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    headers = {"Authorization": f"Bearer {token}"}
    connections = [Connection(parsed.hostname, parsed.port, headers) for _ in range(clients)]
    try:
        return {
            name: await _scenario(connections, make, requests)
            for name, make in scenarios(journeys).items()
        }
    finally:
        for connection in connections:
            await connection.close()


async def _scenario(
    connections: list[Connection], make: MakeRequest, requests: int
) -> dict[str, Any]:
    for connection in connections:  # warm-up: the connections only, not the answer cache
        await connection.get(*WARM_UP)
    latencies: list[float] = []
    statuses: list[int] = []
    per_client = max(1, requests // len(connections))

    async def client_loop(seed: int, connection: Connection) -> None:
        local = random.Random(seed)  # noqa: S311
        for _ in range(per_client):
            path, params = make(local)
            started = time.perf_counter()
            status, _body = await connection.get(path, params)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses.append(status)

    wall = time.perf_counter()
    await asyncio.gather(*(client_loop(i, c) for i, c in enumerate(connections)))
    return {
        "latencies_ms": latencies,
        "errors": sum(status != 200 for status in statuses),
        "wall_s": time.perf_counter() - wall,
    }


def run_clients(url: str, token: str, journeys: list[str], config: BenchConfig) -> dict[str, Any]:
    """The load generator in its own process, so its CPU does not hide in the API's."""
    argv = [
        sys.executable, "-m", "journeylens.api.bench", "load", "--url", url,
        "--clients", str(config.clients), "--requests", str(config.requests),
        "--journeys", ",".join(journeys),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        argv,
        env={**os.environ, TOKEN_ENV: token},
        capture_output=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# ----------------------------------------------------------------------------------- bench


def run_bench(config: BenchConfig, progress: Progress = None) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    journeys = [j.id for j in load_catalog(config.catalog_path).journeys[: config.journeys]]
    with clickhouse(config.dsn, progress) as server:
        target = replace(server, database=f"bench_api_{uuid.uuid4().hex[:8]}")
        client = client_for(target)
        try:
            apply_migrations(client, target.database)
            load_s = load(client, config, datetime.now(UTC), progress)
            counts = {
                table: int(client.command(f"SELECT count() FROM {table}"))  # noqa: S608
                for table in ("rum_events", "journey_aggregates")
            }
            _say(progress, "starting the API and the load generator …")
            with api_process(target, config, token) as url:
                raw = run_clients(url, token, journeys, config)
        finally:
            with contextlib.suppress(Exception):
                client.command(f"DROP DATABASE IF EXISTS {target.database}")
            client.close()
    results = []
    for name, run in raw.items():
        latencies = run["latencies_ms"]
        p95 = percentile(latencies, 0.95)
        results.append(
            {
                "endpoint": "health" if name == "health" else "timeseries",
                "range": "current" if name == "health" else name,
                "requests": len(latencies),
                "errors": run["errors"],
                "throughput_rps": round(len(latencies) / run["wall_s"], 1),
                "p50_ms": round(statistics.median(latencies), 1),
                "p95_ms": round(p95, 1),
                "target_p95_ms": TARGETS_MS[name],
                "ok": p95 <= TARGETS_MS[name] and run["errors"] == 0,
            }
        )
    return {
        "data": {**counts, "load_s": round(load_s, 1)},
        "clients": config.clients,
        "cache_ttl_s": config.cache_ttl_s,
        "results": results,
    }


def _load_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="journeylens.api.bench load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--journeys", required=True)
    args = parser.parse_args(argv)
    token = os.environ[TOKEN_ENV]
    drive = _drive(args.url, token, args.journeys.split(","), args.clients, args.requests)
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; plain asyncio works too
        result = asyncio.run(drive)
    else:
        result = uvloop.run(drive)
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "load":
        sys.exit("usage: python -m journeylens.api.bench load --url URL --journeys a,b ...")
    _load_main(sys.argv[2:])
