"""RUM messages stored unchanged give the same rows as the Python flattener + JSONEachRow did,
for every example and for the edge cases of the contract: through the typed input table
(migration 0007, what the worker writes) and through the lenient landing table (0006, what it
falls back to when the typed table refuses a batch)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from journeylens.processor.bench import make_events
from journeylens.processor.outputs import (
    RUM_INPUT,
    RUM_INSERT_SETTINGS,
    RUM_LANDING,
    ClickHouseOutputs,
)
from journeylens.storage.sink import InsertRejected, TableWriter

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


def _flattened_rows(client: Client, messages: list[bytes]) -> list[tuple[Any, ...]]:
    flat = TableWriter(client, "rum_events")
    client.command("TRUNCATE TABLE rum_events")
    flat.write(flat.flattener.flatten(orjson.loads(m)) for m in messages)
    rows = _rows(client)
    client.command("TRUNCATE TABLE rum_events")
    return rows


def test_landing_view_stores_the_rows_the_flattener_did(clickhouse_client: Client) -> None:
    messages = _messages()
    expected = _flattened_rows(clickhouse_client, messages)

    assert TableWriter(clickhouse_client, RUM_LANDING).write_messages(messages) == len(messages)

    assert _rows(clickhouse_client) == expected
    assert len(expected) == len(messages)


def test_typed_input_view_stores_the_rows_the_flattener_did(clickhouse_client: Client) -> None:
    messages = _messages()
    expected = _flattened_rows(clickhouse_client, messages)

    written = TableWriter(clickhouse_client, RUM_INPUT).write_messages(
        messages, "JSONEachRow", RUM_INSERT_SETTINGS, retry_rejected=False
    )

    assert written == len(messages)
    assert _rows(clickhouse_client) == expected
    assert len(expected) == len(messages)


def test_a_batch_the_typed_table_refuses_is_stored_leniently(clickhouse_client: Client) -> None:
    good = _messages()
    view = orjson.loads(good[0])
    mistyped = {**view, "event_id": "edge-mistyped", "vitals": {"lcp_ms": "fast", "cls": 0.1}}
    messages = [*good, orjson.dumps(mistyped)]
    clickhouse_client.command("TRUNCATE TABLE rum_events")
    with pytest.raises(InsertRejected):
        TableWriter(clickhouse_client, RUM_INPUT, give_up_s=0).write_messages(
            messages, "JSONEachRow", RUM_INSERT_SETTINGS, retry_rejected=False
        )
    assert _rows(clickhouse_client) == []  # the refused insert stored nothing

    ClickHouseOutputs(clickhouse_client).write_rum(messages)

    rows = _rows(clickhouse_client)
    assert len(rows) == len(messages)  # nothing lost, nothing stored twice
    names = [row[0] for row in clickhouse_client.query("DESCRIBE TABLE rum_events").result_rows]
    by_id = {row[names.index("event_id")]: row for row in rows}
    bad = by_id["edge-mistyped"]
    assert bad[names.index("vitals_lcp_ms")] is None  # the mistyped field: its default
    assert bad[names.index("vitals_cls")] == pytest.approx(0.1)


@pytest.mark.parametrize("view", ["rum_events_landing_mv", "rum_events_input_mv"])
def test_both_views_fill_every_column_but_ingested_at(clickhouse_client: Client, view: str) -> None:
    def columns(table: str) -> set[str]:
        return {row[0] for row in clickhouse_client.query(f"DESCRIBE TABLE {table}").result_rows}

    assert columns("rum_events") - columns(view) == {"ingested_at"}
    assert columns(view) <= columns("rum_events")
