"""The real ClickHouse paths: the local server's listener trick, and chdb:// == http://.

Client work runs in subprocesses: a process can hold one chdb data path only (and other tests
of the session may hold one), and "several processes share one server" is the point.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fixtures.clickhouse import RunningClickHouse, unique_database

from journeylens.settings import StackSettings
from journeylens.stack.clickhouse_server import (
    ClickHouseServer,
    ClickHouseServerError,
    http_get,
    server_is_ready,
)
from journeylens.stack.process import free_port, port_answers
from journeylens.storage.client import Client, make_client
from journeylens.storage.migrations import apply_migrations

pytestmark = pytest.mark.clickhouse

# Writes the same rows twice (a replay), then runs analyst-style queries; prints JSON.
ROUNDTRIP = r"""
import json, sys
from datetime import datetime, timedelta
from journeylens.storage.client import make_client, parse_dsn
from journeylens.storage.migrations import apply_migrations

dsn, base = sys.argv[1], datetime.fromisoformat(sys.argv[2])
client = make_client(dsn)
database = parse_dsn(dsn).database
apply_migrations(client, database)
rum_columns = ["event_id", "kind", "source", "timestamp", "received_at", "app", "journey", "step",
    "session_id", "page_id", "url", "path", "vitals_lcp_ms", "context_country",
    "dependencies.host", "dependencies.requests", "dependencies.total_duration_ms",
    "sample_rate", "schema_version"]
rum = [
    [f"e{i}", "page_view", "journeylens", base + timedelta(seconds=7 * i), base, "shop",
     "checkout", ("cart", "payment")[i % 2], f"s{i % 5}", f"p{i}", "https://shop/x", "/x",
     1000.0 + 37 * i, ("FR", "DE", "US")[i % 3], ["cdn.example.com", "api.stripe.com"],
     [3, 1], [90.0 + i, 200.0 + 2 * i], 1.0, 1]
    for i in range(40)
]
syn_columns = ["run_id", "journey", "location", "status", "started_at", "finished_at",
    "duration_ms", "probe_version", "step", "step_index", "kind", "step_status",
    "step_started_at", "step_duration_ms", "attempts", "schema_version",
    "failed_assertions.assertion", "failed_assertions.message"]
syn = []
for run in range(6):
    start, ok = base + timedelta(minutes=run), run % 3 != 2
    status = "passed" if ok else "failed"
    failed = [["status == 200"], ["got 502"]] if not ok else [[], []]
    syn.append([f"r{run}", "checkout", ("eu-1", "us-1")[run % 2], status, start,
                start + timedelta(seconds=2), 2000.0, "1", "_journey", 0, "run", status,
                start, 2000.0, 1, 1, *failed])
    syn.append([f"r{run}", "checkout", ("eu-1", "us-1")[run % 2], status, start,
                start + timedelta(seconds=2), 2000.0, "1", "payment", 1, "http", status,
                start, 400.0 + 10 * run, 1, 1, *failed])
for _replay in range(2):
    client.insert(f"{database}.rum_events", rum, column_names=rum_columns)
    client.insert(f"{database}.synthetic_results", syn, column_names=syn_columns)
queries = {
    "per_minute": "SELECT journey, step, toString(toStartOfMinute(timestamp)) AS minute, "
        "count() AS views, uniqExact(session_id) AS sessions, "
        "quantileExact(0.75)(vitals_lcp_ms) AS lcp_p75 FROM rum_events FINAL "
        "WHERE journey = 'checkout' GROUP BY journey, step, minute ORDER BY step, minute",
    "by_country": "SELECT context_country, count(), round(avg(vitals_lcp_ms), 3) "
        "FROM rum_events FINAL GROUP BY context_country ORDER BY context_country",
    "dependencies": "SELECT d.host, sum(d.requests), quantileExact(0.75)(d.total_duration_ms) "
        "FROM rum_events FINAL ARRAY JOIN dependencies AS d GROUP BY d.host ORDER BY d.host",
    "availability": "SELECT location, count() AS runs, countIf(status = 'passed') AS passed "
        "FROM synthetic_results FINAL WHERE step = '_journey' GROUP BY location ORDER BY location",
    "failed_assertions": "SELECT a, count() FROM synthetic_results FINAL "
        "ARRAY JOIN failed_assertions.assertion AS a WHERE step = 'payment' GROUP BY a",
}
out = {name: [list(map(str, row)) for row in client.query(sql).result_rows]
       for name, sql in queries.items()}
client.close()
print(json.dumps(out, sort_keys=True))
"""

# One of several writer processes: write its rows, then wait to read everyone's.
WRITER = r"""
import sys, time
from datetime import datetime, UTC
from journeylens.storage.client import Client, make_client
dsn, name, rows, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = make_client(dsn, create_database=False)
now = datetime.now(UTC)
client.insert("rum_events", [[f"{name}-{i}", name, now] for i in range(rows)],
              column_names=["event_id", "journey", "timestamp"])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    seen = client.query("SELECT count() FROM rum_events FINAL").result_rows[0][0]
    if seen >= total:
        break
    time.sleep(0.1)
print(seen)
"""


def _run_python(script: str, *args: str, timeout_s: float = 120.0) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _native_hello(port: int) -> bytes:
    """Send a ClickHouse native-protocol Hello; return the server's first packet."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    def text(value: str) -> bytes:
        return varint(len(value)) + value.encode()

    hello = varint(0) + text("journeylens-test") + varint(24) + varint(8) + varint(54460)
    hello += text("default") + text("default") + text("")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(hello)
        return sock.recv(1024)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    stack = StackSettings(
        data_dir=tmp_path,
        clickhouse_http_port=free_port(),
        clickhouse_tcp_port=free_port(),
        startup_timeout_s=60.0,
    )
    server = ClickHouseServer(stack)
    yield server
    server.stop(timeout_s=15.0)


def test_listener_trick_serves_http_and_tcp_to_several_processes(
    own_server: ClickHouseServer,
) -> None:
    started = time.monotonic()
    own_server.start()
    cold_start_s = time.monotonic() - started
    print(f"clickhouse server cold start to ready: {cold_start_s:.2f}s")
    assert not (Path.cwd() / "config.xml").exists()
    assert http_get("127.0.0.1", own_server.http_port, "/ping", 2.0) == "Ok.\n"
    assert _native_hello(own_server.tcp_port)[:12] == b"\x00\nClickHouse"
    status = own_server.status()
    assert status.running and status.pid is not None and "ready" in status.detail
    own_server.start()  # idempotent: already running
    assert own_server.status().pid == status.pid

    client = make_client(own_server.http_dsn)
    apply_migrations(client, "journeylens")
    client.close()
    with ThreadPoolExecutor(2) as pool:
        seen = list(
            pool.map(
                lambda name: _run_python(WRITER, own_server.http_dsn, name, "50", "100"),
                ["writer_a", "writer_b"],
            )
        )
    assert seen == ["100", "100"]


def test_stop_closes_the_ports_and_restart_keeps_the_data(own_server: ClickHouseServer) -> None:
    own_server.start()
    client = make_client(own_server.http_dsn)
    client.command("CREATE TABLE IF NOT EXISTS kept (a UInt8) ENGINE = MergeTree ORDER BY a")
    client.insert("kept", [[1], [2], [3]], column_names=["a"])
    client.close()
    own_server.stop(timeout_s=15.0)
    assert not own_server.status().running
    assert not port_answers("127.0.0.1", own_server.http_port)
    assert not port_answers("127.0.0.1", own_server.tcp_port)
    own_server.start()
    client = make_client(own_server.http_dsn)
    assert client.query("SELECT sum(a) FROM kept").result_rows == [(6,)]
    client.close()


def test_embedded_client_on_the_served_path_says_it_is_busy(own_server: ClickHouseServer) -> None:
    own_server.start()
    script = (
        "import sys\n"
        "from journeylens.storage.client import DataPathBusy, make_client\n"
        "try:\n"
        "    make_client(sys.argv[1])\n"
        "except DataPathBusy as exc:\n"
        "    print(exc)\n"
    )
    message = _run_python(script, f"chdb://{own_server.data_path}")
    assert f"{own_server.data_path} is in use by another process" in message
    assert "JOURNEYLENS_CLICKHOUSE_DSN" in message


def test_busy_port_is_named_with_the_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = StackSettings(
            data_dir=tmp_path, clickhouse_http_port=port, clickhouse_tcp_port=free_port()
        )
        with pytest.raises(ClickHouseServerError) as caught:
            ClickHouseServer(stack).start()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "JOURNEYLENS_STACK_CLICKHOUSE_HTTP_PORT" in str(caught.value)


def test_status_of_a_server_never_started(tmp_path: Path) -> None:
    server = ClickHouseServer(StackSettings(data_dir=tmp_path, clickhouse_http_port=free_port()))
    status = server.status()
    assert (status.running, status.detail) == (False, "not started")
    assert not server_is_ready("127.0.0.1", server.http_port)
    assert server.http_dsn.endswith(f"127.0.0.1:{server.http_port}/journeylens")


def test_same_queries_same_rows_embedded_and_over_http(
    clickhouse_server: RunningClickHouse, tmp_path: Path
) -> None:
    base = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    embedded = _run_python(ROUNDTRIP, f"chdb://{tmp_path / 'chdb'}", base.isoformat())
    target = clickhouse_server.target_for(unique_database("roundtrip"))
    try:
        served = _run_python(ROUNDTRIP, target.dsn(), base.isoformat())
    finally:
        _drop(target.dsn(), target.database)
    assert json.loads(embedded) == json.loads(served)
    result = json.loads(served)
    assert len(result["per_minute"]) > 2
    assert [row[:3] for row in result["availability"]] == [["eu-1", "3", "2"], ["us-1", "3", "2"]]
    assert result["failed_assertions"] == [["status == 200", "2"]]


def _drop(dsn: str, database: str) -> None:
    client = make_client(dsn, create_database=False)
    client.database = "default"
    client.command(f"DROP DATABASE IF EXISTS {database}")
    client.close()


def test_clickhouse_client_fixture_gives_a_migrated_database_of_its_own(
    clickhouse_client: Client,
) -> None:
    database = clickhouse_client.database
    assert database.startswith("t_test_clickhouse_")
    tables = clickhouse_client.query("SHOW TABLES").result_rows
    assert {"rum_events", "synthetic_results", "journey_aggregates", "anomalies", "alerts"} <= {
        name for (name,) in tables
    }
