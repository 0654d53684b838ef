"""The API's ClickHouse client pool against real ClickHouse: bounded, reused, filled up front."""

from __future__ import annotations

import threading
import time

import pytest
from tests.fixtures.clickhouse import RunningClickHouse

from journeylens.api.db import Database
from journeylens.storage.client import Client, client_for

pytestmark = pytest.mark.clickhouse


def test_at_most_max_clients_queries_run_at_once_on_reused_clients(
    clickhouse_server: RunningClickHouse, clickhouse_client: Client
) -> None:
    target = clickhouse_server.target_for(clickhouse_client.database)
    made: list[Client] = []

    def factory() -> Client:
        client = client_for(target, create_database=False)
        made.append(client)
        return client

    database = Database(factory, max_clients=2)
    answers: list[int] = []

    def query(n: int) -> None:
        [row] = database.rows("SELECT {n:UInt8} AS n, sleep(0.3) AS s", {"n": n})
        answers.append(row["n"])

    started = time.monotonic()
    threads = [threading.Thread(target=query, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    try:
        assert sorted(answers) == list(range(6))
        assert len(made) == 2  # six queries, two clients
        assert elapsed >= 0.85  # three rounds of two 0.3 s queries, not one round of six
    finally:
        database.close()


def test_fill_makes_the_clients_up_front(
    clickhouse_server: RunningClickHouse, clickhouse_client: Client
) -> None:
    target = clickhouse_server.target_for(clickhouse_client.database)
    made: list[Client] = []

    def factory() -> Client:
        made.append(client_for(target, create_database=False))
        return made[-1]

    database = Database(factory, max_clients=3)
    try:
        assert database.fill() == 3
        assert database.fill() == 0
        assert database.rows("SELECT 1 AS one", {}) == [{"one": 1}]
        assert len(made) == 3
    finally:
        database.close()
