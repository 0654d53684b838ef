"""RUM messages stored unchanged (landing table + materialized view) give the same rows as the
Python flattener + JSONEachRow did, for every example and for the edge cases of the contract."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from journeylens.processor.bench import make_events
from journeylens.processor.outputs import RUM_LANDING
from journeylens.storage.sink import TableWriter

pytestmark = pytest.mark.clickhouse

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "rum.beacons" / "v1"


def _messages() -> list[bytes]:
    examples = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]
    assert examples
    view = next(e for e in examples if e.get("vitals"))
    edge: list[dict[str, Any]] = []
    nulls = copy.deepcopy(view)  # nulls where the contract allows them, and unknown fields
    nulls.update(event_id="edge-nulls", navigation=None, network_error=None, currency=None)
    nulls["vitals"] = {"lcp_ms": None, "cls": 0}
    nulls["context"]["rtt_ms"] = None
    nulls["not_in_the_table"] = {"x": 1}
    edge.append(nulls)
    bare = {"event_id": "edge-bare", "timestamp": "2026-11-25T10:00:00Z"}  # defaults everywhere
    edge.append(bare)
    lists = copy.deepcopy(view)  # list items missing optional fields
    lists.update(event_id="edge-lists", errors=[{"message": "m"}], api_errors=[{"url": "u"}])
    lists["dependencies"] = [{"host": "h", "requests": 2}, {"host": "i", "provider": "cdn"}]
    edge.append(lists)
    offset = copy.deepcopy(view)  # another UTC offset and no milliseconds
    offset.update(event_id="edge-offset", timestamp="2026-11-25T11:00:07+01:00")
    edge.append(offset)
    messages = [orjson.dumps(m) for m in [*examples, *edge]]
    return messages + make_events(20, 2, 2, 1)[:20]


def _rows(client: Client) -> list[tuple[Any, ...]]:
    return client.query("SELECT * EXCEPT ingested_at FROM rum_events ORDER BY event_id").result_rows


def test_landing_view_stores_the_rows_the_flattener_did(clickhouse_client: Client) -> None:
    messages = _messages()
    flat = TableWriter(clickhouse_client, "rum_events")
    clickhouse_client.command("TRUNCATE TABLE rum_events")
    flat.write(flat.flattener.flatten(orjson.loads(m)) for m in messages)
    expected = _rows(clickhouse_client)
    clickhouse_client.command("TRUNCATE TABLE rum_events")

    assert TableWriter(clickhouse_client, RUM_LANDING).write_messages(messages) == len(messages)

    assert _rows(clickhouse_client) == expected
    assert len(expected) == len(messages)


def test_landing_view_fills_every_column_but_ingested_at(clickhouse_client: Client) -> None:
    def columns(table: str) -> set[str]:
        return {row[0] for row in clickhouse_client.query(f"DESCRIBE TABLE {table}").result_rows}

    assert columns("rum_events") - columns("rum_events_landing_mv") == {"ingested_at"}
    assert columns("rum_events_landing_mv") <= columns("rum_events")
