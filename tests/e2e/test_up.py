"""`journeylens up` on private ports: everything starts, data flows end to end, Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from journeylens.stack.process import free_port, port_is_free
from journeylens.storage.client import make_client

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _count(dsn: str, sql: str) -> int:
    client = make_client(dsn, create_database=False)
    try:
        return int(client.query(sql).result_rows[0][0])
    finally:
        client.close()


def test_up_runs_the_whole_system_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in (
        "KAFKA", "CONTROLLER", "CH_HTTP", "CH_TCP", "COLLECTOR", "API", "SHOP", "PAY", "CDN", "SSO"
    )}  # fmt: skip
    env = {
        **os.environ,
        "JOURNEYLENS_STACK_DATA_DIR": str(tmp_path / "data"),
        "JOURNEYLENS_STACK_CACHE_DIR": str(Path.cwd() / ".cache"),
        "JOURNEYLENS_STACK_KAFKA_PORT": str(ports["KAFKA"]),
        "JOURNEYLENS_STACK_KAFKA_CONTROLLER_PORT": str(ports["CONTROLLER"]),
        "JOURNEYLENS_STACK_CLICKHOUSE_HTTP_PORT": str(ports["CH_HTTP"]),
        "JOURNEYLENS_STACK_CLICKHOUSE_TCP_PORT": str(ports["CH_TCP"]),
        "JOURNEYLENS_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'data' / 'clickhouse'}",
        "JOURNEYLENS_COLLECTOR_PORT": str(ports["COLLECTOR"]),
        "JOURNEYLENS_API_PORT": str(ports["API"]),
        "JOURNEYLENS_DEMO_SHOP_SHOP_PORT": str(ports["SHOP"]),
        "JOURNEYLENS_DEMO_SHOP_PAYMENT_PORT": str(ports["PAY"]),
        "JOURNEYLENS_DEMO_SHOP_CDN_PORT": str(ports["CDN"]),
        "JOURNEYLENS_DEMO_SHOP_SSO_PORT": str(ports["SSO"]),
        "JOURNEYLENS_WORKER_APP_ID": f"up-test-{ports['KAFKA']}",
    }
    env.pop("JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS", None)
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "journeylens.cli.main", "up", "--sessions-per-minute", "300"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    dsn = f"http://default:@127.0.0.1:{ports['CH_HTTP']}/journeylens"
    api = f"http://127.0.0.1:{ports['API']}"
    try:
        _wait(lambda: b"dashboard:" in (tmp_path / "up.log").read_bytes(), 180, "the dashboard")
        headers = {"Authorization": "Bearer journeylens-demo"}
        journeys = httpx.get(f"{api}/api/v1/journeys", headers=headers, timeout=10).json()
        assert {"login", "search", "checkout"} <= {j["id"] for j in journeys["items"]}
        assert httpx.get(f"{api}/api/v1/journeys", timeout=10).status_code == 401
        _wait(lambda: _count(dsn, "SELECT count() FROM rum_events") > 50, 120, "RUM events")
        _wait(lambda: _count(dsn, "SELECT count() FROM synthetic_results") > 0, 120, "probe runs")
        mapped = "SELECT count() FROM rum_events WHERE journey = 'checkout' AND step = 'cart'"
        _wait(lambda: _count(dsn, mapped) > 0, 60, "beacons mapped to their journey and step")
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=120)
        log.close()
    print((tmp_path / "up.log").read_text()[-3000:])
    for role_log in sorted((tmp_path / "data" / "logs").glob("*.log")):
        print(f"--- {role_log.name}", role_log.read_text(errors="replace")[-1500:])
    assert code == 0
    for name, port in ports.items():
        assert port_is_free("127.0.0.1", port), f"{name} port {port} still in use after Ctrl-C"
