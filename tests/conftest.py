"""Test-wide configuration: the real Kafka and ClickHouse come from session fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.kafka", "tests.fixtures.clickhouse"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
