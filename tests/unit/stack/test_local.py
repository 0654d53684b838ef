"""Which ClickHouse a process uses when only the stack's data directory is configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from journeylens.settings import ClickHouseSettings, StackSettings
from journeylens.stack.clickhouse_server import ClickHouseServer
from journeylens.stack.local import configured_clickhouse_dsn, resolve_clickhouse_dsn


@pytest.fixture(autouse=True)
def _no_dsn_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYLENS_CLICKHOUSE_DSN", raising=False)
    monkeypatch.delenv("JOURNEYLENS_STACK_DATA_DIR", raising=False)  # as CI sets it


def test_without_a_dsn_the_data_sits_under_the_stack_data_dir(tmp_path: Path) -> None:
    stack = StackSettings(data_dir=tmp_path / "data")
    assert configured_clickhouse_dsn(ClickHouseSettings(), stack) == (
        f"chdb://{tmp_path}/data/clickhouse"
    )
    assert configured_clickhouse_dsn(ClickHouseSettings(), StackSettings()) == (
        "chdb://.data/clickhouse"
    )


def test_a_dsn_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYLENS_CLICKHOUSE_DSN", "chdb://elsewhere/clickhouse")
    stack = StackSettings(data_dir=tmp_path / "data")
    assert configured_clickhouse_dsn(ClickHouseSettings(), stack) == "chdb://elsewhere/clickhouse"
    # even when it names the default path
    monkeypatch.setenv("JOURNEYLENS_CLICKHOUSE_DSN", "chdb://.data/clickhouse")
    assert configured_clickhouse_dsn(ClickHouseSettings(), stack) == "chdb://.data/clickhouse"


def test_a_running_stack_server_on_the_data_dir_is_reached_over_http(tmp_path: Path) -> None:
    stack = StackSettings(data_dir=tmp_path / "data", clickhouse_http_port=18123)
    server = ClickHouseServer(stack)
    assert resolve_clickhouse_dsn(ClickHouseSettings(), stack) == (
        f"chdb://{tmp_path}/data/clickhouse"
    )  # no server running: the embedded engine on the same files
    server.home.mkdir(parents=True)
    server.pid_file.write_text(f"{os.getpid()}\n")  # a live pid stands for it
    assert resolve_clickhouse_dsn(ClickHouseSettings(), stack) == (
        "http://default:@127.0.0.1:18123/journeylens"
    )
