"""RUM messages stored unchanged give the same rows as the Python flattener + JSONEachRow did,
for every example and for the edge cases of the contract: as Native blocks of the typed input
table (migration 0007, what the worker writes), through that table's JSONEachRow reader (for
the messages the encoder leaves out), and through the lenient landing table (0006, what it falls
back to when the typed table refuses a batch)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from tests.fixtures.damaged_messages import damaged_messages

from journeylens.processor.bench import make_events
from journeylens.processor.outputs import (
    RUM_INPUT,
    RUM_INSERT_SETTINGS,
    RUM_LANDING,
    ClickHouseOutputs,
    _rumnative,
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


def _strings_edge(view: dict[str, Any]) -> list[bytes]:
    """Messages whose strings need unescaping, as producers other than orjson may write them."""
    raw = orjson.dumps({**view, "event_id": "edge-escapes"}).decode()
    escaped = raw.replace(
        '"path":"', '"path":"\\u00e9t\\u00E9 \\ud83d\\ude80 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t', 1
    )
    utf8 = {**view, "event_id": "edge-utf8", "url": "https://bücher.example/ü?q=ö€😀"}
    spaced = (
        '{ "event_id" : "edge-spaced" ,\n "timestamp":"2026-11-25T10:00:00Z",'
        ' "vitals": { "lcp_ms" : 1e3 , "cls" : -0.0 } }'
    )
    numbers = {**view, "event_id": "edge-numbers"}
    numbers["vitals"] = {
        "lcp_ms": 2.5e3,
        "inp_ms": 0.1,
        "cls": 1e-7,
        "fcp_ms": 1.2345678912345679e8,
    }
    numbers["dependencies"] = [{"host": "h", "requests": 4294967295, "transfer_bytes": 2**64 - 1}]
    numbers["errors"] = [{"message": "m", "line": -2147483648, "column": 2147483647}]
    return [escaped.encode(), orjson.dumps(utf8), spaced.encode(), orjson.dumps(numbers)]


def test_native_blocks_store_the_rows_the_flattener_did(clickhouse_client: Client) -> None:
    assert _rumnative is not None, "the Native encoder is built by pip install (setup.py)"
    messages = _messages()
    expected = _flattened_rows(clickhouse_client, messages)

    block, refused = _rumnative.encode(messages)
    assert refused == []
    TableWriter(clickhouse_client, RUM_INPUT).write_stream(
        lambda: (b for b in [block]), len(messages), "Native", RUM_INSERT_SETTINGS
    )

    assert _rows(clickhouse_client) == expected
    assert len(expected) == len(messages)


def test_native_blocks_and_the_reader_store_the_same_rows(clickhouse_client: Client) -> None:
    view = orjson.loads(_messages()[0])
    messages = _strings_edge(view) + _messages()
    block, refused = _rumnative.encode(messages) if _rumnative else (b"", [])
    assert block and refused == []
    clickhouse_client.command("TRUNCATE TABLE rum_events")
    TableWriter(clickhouse_client, RUM_INPUT).write_messages(
        messages, "JSONEachRow", RUM_INSERT_SETTINGS, retry_rejected=False
    )
    read = _rows(clickhouse_client)
    clickhouse_client.command("TRUNCATE TABLE rum_events")

    halves = [block[: len(block) // 2], block[len(block) // 2 :]]  # a block may come in pieces
    TableWriter(clickhouse_client, RUM_INPUT).write_stream(
        lambda: (b for b in halves),
        len(messages),
        "Native",
        RUM_INSERT_SETTINGS,
    )

    assert _rows(clickhouse_client) == read
    assert len(read) == len(messages)
    names = [row[0] for row in clickhouse_client.query("DESCRIBE TABLE rum_events").result_rows]
    by_id = {row[names.index("event_id")]: row for row in read}
    path = by_id["edge-escapes"][names.index("path")]
    assert path.startswith('été 🚀 "q" \\ / \b\f\n\r\t')


T = b'{"timestamp":"2026-11-25T10:00:00Z",'
"""The start of a message the pipeline would pass on (it has a timestamp)."""
REFUSED = [
    T + b'"event_id":"r-quoted","vitals":{"lcp_ms":"1200"}}',  # a quoted number
    T + b'"event_id":"r-number","session_id":123}',  # a number where a string belongs
    T + b'"event_id":"r-string","sample_rate":"1"}',  # a string where a number belongs
    T + b'"event_id":"r-dup","event_id":"again"}',  # a duplicate field
    T + b'"event_id":"r-key","\\u0073tep":"s0"}',  # an escaped key
    T + b'"event_id":"r-surrogate","url":"\\ud83d"}',  # a lone surrogate
    T + b'"event_id":"r-fraction","dependencies":[{"host":"h","requests":2.5}]}',
    T + b'"event_id":"r-negative","dependencies":[{"host":"h","requests":-1}]}',
    T + b'"event_id":"r-range","api_errors":[{"url":"u","status":70000}]}',
    T + b'"event_id":"r-bool","synthetic":1}',
    T + b'"event_id":"r-item","errors":[null]}',
    T + b'"event_id":"r-trailing"} x',
    T + b'"event_id":"r-truncated","vitals":{"lcp_ms":1',
    b"[1,2]",
    b"not json",
]
READABLE = REFUSED[:11]
"""The refused messages that are JSON objects (the reader, or the lenient path, stores them)."""


def test_the_encoder_leaves_out_what_it_cannot_read_exactly() -> None:
    assert _rumnative is not None
    good = _messages()
    messages = [good[0], *REFUSED, good[1]]
    block, refused = _rumnative.encode(messages)
    assert refused == list(range(1, len(REFUSED) + 1))
    alone, none_refused = _rumnative.encode([good[0], good[1]])
    assert block == alone and none_refused == []  # nothing of the refused ones is in the block
    assert _rumnative.encode([]) == (b"", [])
    assert _rumnative.encode(REFUSED) == (b"", list(range(len(REFUSED))))
    with pytest.raises(TypeError, match="message 1 is str"):
        _rumnative.encode([good[0], "text"])  # type: ignore[list-item]


def test_what_the_encoder_leaves_out_is_stored_as_the_reader_stores_it(
    clickhouse_client: Client,
) -> None:
    good = _messages()
    messages = [*good, *READABLE]
    clickhouse_client.command("TRUNCATE TABLE rum_events")
    ClickHouseOutputs(clickhouse_client).write_typed(messages)  # the reader alone (lenient)
    expected = _recent_rows(clickhouse_client)
    clickhouse_client.command("TRUNCATE TABLE rum_events")

    ClickHouseOutputs(clickhouse_client).write_rum(messages)

    assert _recent_rows(clickhouse_client) == expected  # the Native path changed nothing
    stored = [row[0] for row in expected]
    assert len(stored) == len(set(stored))  # nothing stored twice
    # nothing lost but what the lenient path makes of JSON it cannot parse (a lone surrogate):
    # a row of defaults dated 1970, which the table's TTL drops), Native blocks or not
    refused = "quoted number string dup key fraction negative range bool item"
    assert set(stored) == {orjson.loads(m)["event_id"] for m in good} | {
        f"r-{case}" for case in refused.split(" ")
    }


def _recent_rows(client: Client) -> list[tuple[Any, ...]]:
    """The rows of ``rum_events`` within its 30-day TTL (older ones may be dropped at any
    moment by a merge)."""
    return client.query(
        "SELECT * EXCEPT ingested_at FROM rum_events"
        " WHERE timestamp >= now() - INTERVAL 29 DAY ORDER BY event_id"
    ).result_rows


def test_without_the_encoder_every_message_goes_through_the_reader(
    clickhouse_client: Client,
) -> None:
    messages = _messages()
    expected = _flattened_rows(clickhouse_client, messages)
    outputs = ClickHouseOutputs(clickhouse_client)
    outputs.native = None  # as where the extension could not be built

    outputs.write_rum(messages)

    assert _rows(clickhouse_client) == expected


def test_damaged_messages_the_encoder_takes_are_stored_as_the_reader_stores_them(
    clickhouse_client: Client,
) -> None:
    assert _rumnative is not None
    damaged = damaged_messages(seed=11, count=1_500)
    block, refused = _rumnative.encode(damaged)
    left_out = set(refused)
    taken = [m for i, m in enumerate(damaged) if i not in left_out]
    assert len(taken) > 300
    clickhouse_client.command("TRUNCATE TABLE rum_events")
    TableWriter(clickhouse_client, RUM_INPUT).write_messages(
        taken, "JSONEachRow", RUM_INSERT_SETTINGS, retry_rejected=False
    )  # the reader reads every message the encoder took
    # damaged copies share event ids: all columns order them; rows past the TTL are left out
    read = sorted(_recent_rows(clickhouse_client), key=repr)
    clickhouse_client.command("TRUNCATE TABLE rum_events")

    TableWriter(clickhouse_client, RUM_INPUT).write_stream(
        lambda: (b for b in [block]), len(taken), "Native", RUM_INSERT_SETTINGS
    )

    assert sorted(_recent_rows(clickhouse_client), key=repr) == read
    assert len(read) > 250


def test_native_blocks_are_encoded_as_the_insert_sends_them(
    clickhouse_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slice's block at a time: the next slice is encoded only once the last block was
    sent; an insert retried after a lost connection encodes again, stores each row once and
    counts the rows of the pass that went through."""
    good = _messages()
    messages = [*good[:9], *READABLE[:2], *good[9:]]  # left-outs inside a slice, in order
    clickhouse_client.command("TRUNCATE TABLE rum_events")
    ClickHouseOutputs(clickhouse_client).write_rum(messages)
    expected = _recent_rows(clickhouse_client)
    clickhouse_client.command("TRUNCATE TABLE rum_events")

    monkeypatch.setattr("journeylens.processor.outputs.NATIVE_SLICE", 7)
    outputs = ClickHouseOutputs(clickhouse_client)
    assert outputs.native is not None
    log: list[str] = []
    real_encode, real_insert = outputs.native.encode, clickhouse_client.raw_insert
    native_rows: list[int] = []
    real_write_stream = outputs.rum.write_stream

    class Recording:
        @staticmethod
        def encode(part: list[bytes]) -> tuple[bytes, list[int]]:
            log.append("encode")
            return real_encode(part)  # type: ignore[no-any-return]

    def insert(table: str, *, insert_block: Any, **kwargs: Any) -> Any:
        if kwargs["fmt"] != "Native":  # the reader's insert of the left-outs
            return real_insert(table, insert_block=insert_block, **kwargs)
        sent = []
        for chunk in insert_block:
            log.append("send")
            sent.append(chunk)
            if len(sent) == 2 and "lost" not in log:
                log.append("lost")  # the connection drops mid-stream
                raise OSError("connection reset")
        return real_insert(table, insert_block=b"".join(sent), **kwargs)

    def write_stream(*args: Any, **kwargs: Any) -> int:
        native_rows.append(real_write_stream(*args, **kwargs))
        return native_rows[-1]

    outputs.native = Recording  # type: ignore[assignment]
    outputs.rum._sleep = lambda s: None
    monkeypatch.setattr(outputs.rum, "write_stream", write_stream)
    monkeypatch.setattr(clickhouse_client, "raw_insert", insert)

    outputs.write_rum(messages)

    slices = -(-len(messages) // 7)
    assert slices >= 4
    assert log == ["encode", "send", "encode", "send", "lost", *["encode", "send"] * slices]
    assert native_rows == [len(good)]  # the READABLE ones are left out, once
    assert _recent_rows(clickhouse_client) == expected
