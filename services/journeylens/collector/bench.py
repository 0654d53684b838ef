"""``journeylens bench collector``: accepted beacons/s of a real collector on a real Kafka.

What runs, all on loopback:

1. Kafka: the configured bootstrap when it answers, else a throw-away `KafkaBroker` on free
   ports in a temporary directory (jars from the stack cache); topics get a unique prefix.
2. The collector as a real uvicorn process (1 worker, uvloop + httptools, no access log), and
   then, with the same server options, a bare FastAPI app whose endpoint does nothing.
3. A load generator in another process drives each scenario for a fixed time after a warm-up:
   ``batched`` (POSTs of 20 beacons), ``single`` (1 beacon per POST) and ``bare``. It is
   ``wrk`` (C, epoll; Debian package ``wrk``) when installed, so the client costs far less CPU
   than the server it measures; otherwise a Python one (raw HTTP/1.1 on keep-alive
   connections, uvloop). Both servers run for the whole bench and the three scenarios are
   interleaved ``--runs`` times, so the single/bare ratio is taken within each round (same
   machine state) and the medians are reported.

Reported: per scenario the median requests/s, accepted beacons/s, p50/p99 latency and errors;
the single/bare ratio of each round and its median; the messages that reached the topic
(at least every accepted beacon); each target with the measured value and whether it is met.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import click
import orjson
from fastapi import FastAPI
from starlette.responses import Response

from journeylens.settings import CatalogSettings, KafkaSettings, Topic
from journeylens.stack.process import process_cpu_s
from journeylens.stack.throwaway import bench_kafka

HOST = "127.0.0.1"
BATCH_SIZE = 20
TARGET_BATCHED_BEACONS_PER_S = 25_000
TARGET_SINGLE_TO_BARE = 0.6
SERVER_FLAGS = (
    "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
    "--workers", "1", "--backlog", "4096", "--no-server-header",
)  # fmt: skip
PATHS = ("/cart", "/checkout", "/product/p-{n}", "/search?q=lamp", "/login", "/account", "/x")
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)


# ------------------------------------------------------------------------ results


@dataclass
class ScenarioResult:
    name: str
    beacons_per_request: int
    duration_s: float
    requests: int
    ok: int
    errors: dict[str, int]
    requests_per_s: float
    beacons_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu: float | None = None
    """CPU time of the server process during the measured run ÷ its duration (1.0 = a core)."""
    beacons_per_cpu_s: float | None = None
    """Accepted beacons per CPU-second of the server process: its cost, whatever share of the
    machine the load generator and Kafka left it."""


@dataclass
class Target:
    name: str
    value: float
    target: float
    met: bool


@dataclass
class BenchResult:
    kafka: str
    load_generator: str
    connections: int
    duration_s: float
    runs: int
    rounds: list[dict[str, ScenarioResult]] = field(default_factory=list)
    scenarios: dict[str, ScenarioResult] = field(default_factory=dict)
    """Per scenario, the round with the median requests/s."""
    single_to_bare_per_round: list[float] = field(default_factory=list)
    single_to_bare: float = 0.0
    """Median of the per-round ratios."""
    accepted_beacons: int = 0
    kafka_messages: int = 0
    targets: list[Target] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------ bodies


def beacon_body(rng: random.Random, items: int, origin: str = "http://127.0.0.1:8600") -> bytes:
    """A realistic JourneyLens beacon batch of ``items`` page views (each its own page)."""
    now = time.time() * 1000
    path = rng.choice(PATHS).format(n=rng.randrange(1000))
    entries = []
    for _ in range(items):
        entries.append(
            {
                "type": "page_view",
                "ts": now,
                "url": f"{origin}{path}",
                "pid": uuid.UUID(int=rng.getrandbits(128)).hex,
                "vitals": {
                    "lcp": round(rng.uniform(400, 6000), 1),
                    "cls": round(rng.uniform(0, 0.4), 3),
                    "fcp": round(rng.uniform(200, 3000), 1),
                    "ttfb": round(rng.uniform(50, 2000), 1),
                },
                "nav": {"dns": 2.1, "connect": 4.2, "request": 80.5, "duration": 1450.0},
                "res": [
                    {"host": "127.0.0.1:8602", "n": 6, "dur": 180.2, "max": 60.1},
                    {"host": "fonts.example.net", "n": 2, "dur": 40.0, "max": 25.0},
                ],
            }
        )
    batch = {
        "v": 1,
        "sid": uuid.UUID(int=rng.getrandbits(128)).hex,
        "pid": uuid.UUID(int=rng.getrandbits(128)).hex,
        "url": f"{origin}{path}",
        "ts": now,
        "conn": {"type": "4g", "rtt": 50, "downlink": 10},
        "items": entries,
    }
    return orjson.dumps(batch)


def http_request(path: str, body: bytes, user_agent: str, port: int) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: text/plain;charset=UTF-8\r\nUser-Agent: {user_agent}\r\n"
        f"Origin: http://127.0.0.1:8600\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


# ------------------------------------------------------------------------ load generator

_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending one request at a time."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end == -1:
            return
        match = _CONTENT_LENGTH.search(self.buffer, 0, end)
        length = int(match.group(1)) if match else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def request(self, payload: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter


async def _drive(config: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    port, payloads = config["port"], [p.encode("latin-1") for p in config["payloads"]]
    warmup_s, duration_s = config["warmup_s"], config["duration_s"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    clock = time.perf_counter
    start = clock()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s

    async def worker(index: int) -> None:
        closed: asyncio.Future[None] = loop.create_future()
        _, conn = await loop.create_connection(lambda: _Connection(closed), HOST, port)
        i = index
        try:
            while True:
                sent = clock()
                if sent >= stop_at:
                    return
                try:
                    status = await asyncio.wait_for(conn.request(payloads[i % len(payloads)]), 30)
                except (ConnectionError, TimeoutError):
                    statuses["conn-error"] = statuses.get("conn-error", 0) + 1
                    return
                i += 7
                done = clock()
                if sent >= measure_from and done <= stop_at:
                    key = str(status)
                    statuses[key] = statuses.get(key, 0) + 1
                    latencies.append(done - sent)
        finally:
            if conn.transport is not None:
                conn.transport.close()

    await asyncio.gather(*(worker(i) for i in range(config["connections"])))
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
        )

    return {"statuses": statuses, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def load_main() -> None:
    """Entry point of the load-generator process: config JSON on stdin, result JSON out."""
    config = json.loads(sys.stdin.read())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        pass
    print(json.dumps(asyncio.run(_drive(config))))


def run_load(
    port: int,
    path: str,
    beacons: int,
    connections: int,
    warmup_s: float,
    duration_s: float,
    seed: int = 7,
    work: Path | None = None,
    server_pid: int | None = None,
) -> ScenarioResult:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    bodies = [(beacon_body(rng, beacons), rng.choice(USER_AGENTS)) for _ in range(256)]
    wrk = shutil.which("wrk")
    if wrk is not None and work is not None:
        raw = _run_wrk(wrk, port, path, bodies, connections, warmup_s, duration_s, work, server_pid)
    else:
        payloads = [http_request(path, body, ua, port).decode("latin-1") for body, ua in bodies]
        raw = _run_python_load(port, payloads, connections, warmup_s, duration_s)
    statuses: dict[str, int] = raw["statuses"]
    ok = sum(n for code, n in statuses.items() if _is_success(code))
    total = sum(statuses.values())
    cpu_s: float | None = raw.get("server_cpu_s")
    return ScenarioResult(
        name=path,
        beacons_per_request=beacons,
        duration_s=duration_s,
        requests=total,
        ok=ok,
        errors={code: n for code, n in statuses.items() if not _is_success(code)},
        requests_per_s=round(ok / duration_s, 1),
        beacons_per_s=round(ok * beacons / duration_s, 1),
        p50_ms=round(raw["p50_ms"], 2),
        p99_ms=round(raw["p99_ms"], 2),
        server_cpu=round(cpu_s / duration_s, 3) if cpu_s is not None else None,
        beacons_per_cpu_s=round(ok * beacons / cpu_s, 1) if cpu_s else None,
    )


def _is_success(code: str) -> bool:
    return code == "2xx" or (code.isdigit() and 200 <= int(code) < 300)


def _run_python_load(
    port: int, payloads: list[str], connections: int, warmup_s: float, duration_s: float
) -> dict[str, Any]:
    config = {
        "port": port,
        "payloads": payloads,
        "connections": connections,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", "from journeylens.collector.bench import load_main; load_main()"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=warmup_s + duration_s + 120,
        check=False,
    )
    if done.returncode != 0:
        raise click.ClickException(f"load generator failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


_WRK_SCRIPT = """
local requests, index = {}, 0
function init(args)
  local file = io.open(args[1], "rb")
  for line in file:lines() do
    local ua, body = line:match("^([^\\t]*)\\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", args[2], {
      ["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = ua,
      ["Origin"] = "http://127.0.0.1:8600"}, body)
  end
  file:close()
  index = math.random(#requests)
end
function request()
  index = index % #requests + 1
  return requests[index]
end
function done(summary, latency, _)
  local e = summary.errors
  io.stderr:write(string.format(
    "RESULT %d %d %d %d %d %d %.3f %.3f\\n", summary.requests, e.status, e.connect, e.read,
    e.write, e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _run_wrk(
    wrk: str,
    port: int,
    path: str,
    bodies: list[tuple[bytes, str]],
    connections: int,
    warmup_s: float,
    duration_s: float,
    work: Path,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """One scenario with wrk (1 thread): a warm-up run, then the measured run (during which
    the server process's CPU time is taken when its pid is given)."""
    script, data = work / "bench.lua", work / f"bodies-{uuid.uuid4().hex[:8]}.tsv"
    script.write_text(_WRK_SCRIPT, encoding="utf-8")
    data.write_bytes(b"".join(ua.encode() + b"\t" + body + b"\n" for body, ua in bodies))
    base = [wrk, "-t1", f"-c{connections}", "-s", str(script), f"http://{HOST}:{port}{path}"]

    def run(seconds: float) -> str:
        done = subprocess.run(  # noqa: S603 - wrk from PATH with our own arguments
            [*base[:-1], f"-d{max(1, round(seconds))}s", "--timeout", "30s", base[-1], "--",
             str(data), path],
            capture_output=True, text=True, timeout=seconds + 120, check=False,
        )  # fmt: skip
        if done.returncode != 0 or "RESULT" not in done.stderr:
            raise click.ClickException(f"wrk failed: {(done.stderr or done.stdout)[-2000:]}")
        return done.stderr

    if warmup_s > 0:
        run(warmup_s)
    cpu_before = _server_cpu_s(server_pid)
    output = run(duration_s)
    cpu_after = _server_cpu_s(server_pid)
    line = next(x for x in output.splitlines() if x.startswith("RESULT"))
    requests, status, connect, read, write, timeout = (int(v) for v in line.split()[1:7])
    p50_ms, p99_ms = (float(v) for v in line.split()[7:9])
    statuses = {"2xx": requests - status, "non-2xx": status}
    for name, count in (
        ("connect", connect),
        ("read", read),
        ("write", write),
        ("timeout", timeout),
    ):
        if count:
            statuses[f"{name}-error"] = count
    return {
        "statuses": {k: v for k, v in statuses.items() if v},
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        "server_cpu_s": (
            cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        ),
    }


def _server_cpu_s(pid: int | None) -> float | None:
    """The server's CPU seconds so far, None when its pid is unknown or it is gone."""
    if pid is None:
        return None
    try:
        return process_cpu_s(pid)
    except OSError:
        return None


# ------------------------------------------------------------------------ servers


def bare_app() -> FastAPI:
    """A FastAPI app whose endpoint does nothing: the reference for the single-beacon rate."""
    app = FastAPI()

    @app.post("/v1/beacons")
    async def nothing() -> Response:
        return Response(status_code=202)

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(status_code=200)

    return app


def _free_port() -> int:
    from journeylens.stack.process import free_port

    return free_port(HOST)


@contextmanager
def uvicorn_process(
    target: str, port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A uvicorn server process (1 worker) for ``target`` (a factory), ready on ``port``."""
    import httpx

    command = [
        sys.executable, "-m", "uvicorn", target, "--factory", "--host", HOST,
        "--port", str(port), *SERVER_FLAGS,
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        probe = "/readyz"
        while True:
            if process.poll() is not None:
                raise click.ClickException(f"{target} exited; see {log}")
            try:
                if httpx.get(f"http://{HOST}:{port}{probe}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"{target} not ready after 60s; see {log}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _topic_messages(kafka: KafkaSettings) -> int:
    """How many messages the RUM topic holds (sum of its partitions' end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from journeylens.stack.topics import admin_client_options

    topic = kafka.physical(Topic.RUM_BEACONS)
    admin = AIOKafkaAdminClient(**admin_client_options(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described[0]["partitions"]]
    consumer = AIOKafkaConsumer(
        **admin_client_options(kafka), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------ the bench


def run_bench(
    duration_s: float = 8.0,
    warmup_s: float = 2.0,
    connections: int = 32,
    progress: Any = None,
    runs: int = 3,
) -> BenchResult:
    from journeylens.stack.topics import ensure_topics, load_topic_specs

    say = progress or (lambda _line: None)
    with tempfile.TemporaryDirectory(prefix="journeylens-bench-") as tmp:
        work = Path(tmp)
        with bench_kafka(work, say) as kafka:
            specs_dir = Path(__file__).resolve().parents[3] / "schemas" / "topics"
            asyncio.run(ensure_topics(kafka, load_topic_specs(specs_dir), say))
            result = BenchResult(
                kafka=kafka.bootstrap_servers,
                load_generator="wrk" if shutil.which("wrk") else "python",
                connections=connections,
                duration_s=duration_s,
                runs=runs,
            )
            env = {
                "JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "JOURNEYLENS_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
                "JOURNEYLENS_CATALOG_PATH": str(CatalogSettings().path.resolve()),
                "JOURNEYLENS_COLLECTOR_RATE_LIMIT_PER_S": "1e9",
                "JOURNEYLENS_COLLECTOR_RATE_LIMIT_BURST": "1000000000",
                "JOURNEYLENS_COLLECTOR_BUFFER_MAX_EVENTS": "200000",
            }
            collector_port, bare_port = _free_port(), _free_port()
            say(f"collector on {HOST}:{collector_port} (Kafka {kafka.bootstrap_servers})")
            say(f"bare FastAPI endpoint on {HOST}:{bare_port}, same server options")
            collector = "journeylens.cli.collector:build_app"
            with (
                uvicorn_process(collector, collector_port, env, work / "collector.log") as server,
                uvicorn_process(bare_app_target(), bare_port, {}, work / "bare.log") as bare,
            ):
                key = "/v1/beacons?k=pk_demo_shop_0001"
                scenarios = (
                    ("batched", collector_port, server.pid, key, BATCH_SIZE),
                    ("single", collector_port, server.pid, key, 1),
                    ("bare", bare_port, bare.pid, "/v1/beacons", 1),
                )
                for run in range(runs):
                    round_results: dict[str, ScenarioResult] = {}
                    for name, port, pid, path, beacons in scenarios:
                        say(f"round {run + 1}/{runs}: {name} ({beacons} beacon(s) per POST)")
                        scenario = run_load(
                            port,
                            path,
                            beacons,
                            connections,
                            warmup_s,
                            duration_s,
                            work=work,
                            server_pid=pid,
                        )
                        scenario.name = name
                        round_results[name] = scenario
                    result.rounds.append(round_results)
            result.kafka_messages = asyncio.run(_topic_messages(kafka))
    _summarize(result)
    return result


def bare_app_target() -> str:
    return "journeylens.collector.bench:bare_app"


def _summarize(result: BenchResult) -> None:
    """Medians over the rounds, the per-round single/bare ratios, and the targets."""
    for name in ("batched", "single", "bare"):
        ordered = sorted((r[name] for r in result.rounds), key=lambda s: s.requests_per_s)
        result.scenarios[name] = ordered[(len(ordered) - 1) // 2]
    result.single_to_bare_per_round = [
        round(r["single"].requests_per_s / r["bare"].requests_per_s, 3)
        if r["bare"].requests_per_s
        else 0.0
        for r in result.rounds
    ]
    result.single_to_bare = statistics.median(result.single_to_bare_per_round)
    result.accepted_beacons = sum(
        r[name].ok * r[name].beacons_per_request
        for r in result.rounds
        for name in ("batched", "single")
    )
    batched = result.scenarios["batched"].beacons_per_s
    result.targets = [
        Target(
            "batched beacons/s per collector process",
            batched,
            TARGET_BATCHED_BEACONS_PER_S,
            batched >= TARGET_BATCHED_BEACONS_PER_S,
        ),
        Target(
            "single-beacon req/s ÷ bare FastAPI req/s",
            result.single_to_bare,
            TARGET_SINGLE_TO_BARE,
            result.single_to_bare >= TARGET_SINGLE_TO_BARE,
        ),
    ]


def render_table(result: BenchResult) -> str:
    rule = "-" * 96
    lines = [
        f"collector bench: {result.runs} round(s) of {result.duration_s:g}s per scenario, "
        f"{result.connections} connections, load generator {result.load_generator}, "
        f"Kafka {result.kafka}",
        rule,
        f"{'scenario':<10} {'beacons/req':>11} {'req/s':>10} {'beacons/s':>11} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'server cpu':>10} {'/cpu-s':>8}  errors",
    ]
    for s in result.scenarios.values():
        errors = ", ".join(f"{k}: {v}" for k, v in s.errors.items()) or "-"
        cpu = f"{s.server_cpu:.2f}" if s.server_cpu is not None else "?"
        per_cpu = f"{s.beacons_per_cpu_s:.0f}" if s.beacons_per_cpu_s is not None else "?"
        lines.append(
            f"{s.name:<10} {s.beacons_per_request:>11} {s.requests_per_s:>10.0f} "
            f"{s.beacons_per_s:>11.0f} {s.p50_ms:>8.2f} {s.p99_ms:>8.2f} {cpu:>10} "
            f"{per_cpu:>8}  {errors}"
        )
    lines.append(f"(median of {result.runs} round(s); req/s per round:")
    for name in ("batched", "single", "bare"):
        per_round = ", ".join(f"{r[name].requests_per_s:.0f}" for r in result.rounds)
        lines.append(f"   {name:<8} {per_round}")
    ratios = ", ".join(f"{r:.3f}" for r in result.single_to_bare_per_round)
    lines.append(f" single/bare per round: {ratios})")
    lines.append(
        "(server cpu: the server process's CPU time over the run, 1.00 = one core; /cpu-s:"
        " beacons per CPU-second of it)"
    )
    lines.append(
        f"accepted beacons {result.accepted_beacons}, messages on {Topic.RUM_BEACONS.value}: "
        f"{result.kafka_messages}"
        + ("" if result.kafka_messages >= result.accepted_beacons else "  <-- LOST MESSAGES")
    )
    lines.append(rule)
    lines.append(f"{'target':<44} {'measured':>10} {'target':>10}  result")
    for t in result.targets:
        fmt = ".3f" if t.target < 10 else ".0f"
        lines.append(
            f"{t.name:<44} {t.value:>10{fmt}} {'>= ' + format(t.target, fmt):>10}  "
            f"{'met' if t.met else 'NOT met'}"
        )
    return "\n".join(lines)


@click.command("collector")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (only JSON).")
@click.option("--duration", type=click.FloatRange(1, 120), default=8.0, show_default=True)
@click.option("--warmup", type=click.FloatRange(0, 30), default=2.0, show_default=True)
@click.option("--connections", type=click.IntRange(1, 512), default=32, show_default=True)
@click.option("--runs", type=click.IntRange(1, 15), default=3, show_default=True,
              help="Rounds of the three scenarios; medians are reported.")  # fmt: skip
def bench_collector(
    as_json: bool, duration: float, warmup: float, connections: int, runs: int
) -> None:
    """Accepted beacons/s (batched and single) of a real collector on a real Kafka."""

    def progress(line: str) -> None:
        click.echo(f"  {line}", err=True)

    result = run_bench(duration, warmup, connections, progress, runs)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(render_table(result))
