"""Batched, idempotent writes of contract messages into ClickHouse tables.

One insert per batch per table, parsed by the server: flattened rows (JSONEachRow), or the
messages unchanged, into a Null table whose materialized view flattens them (JSONEachRow into
typed columns, or JSONAsString into one String column that the view parses). Replays are harmless:
every table is a ReplacingMergeTree keyed by the message's deterministic id. When ClickHouse
is unavailable the writer waits and retries (with progress in the log) rather than dropping
the batch: the caller commits its Kafka offsets only after :meth:`TableWriter.write` returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from journeylens.storage.rows import RowFlattener, TableShape, to_json_each_row

log = logging.getLogger(__name__)

STREAM_SLICE = 2_000
"""Messages per chunk of a streamed insert body."""
INSERT_SETTINGS = {
    "date_time_input_format": "best_effort",
    "input_format_skip_unknown_fields": 1,
}


class InsertRejected(RuntimeError):
    """The server answered an insert with an error (not a lost connection): retrying the same
    block would fail the same way. Raised only by writes that asked for it
    (``retry_rejected=False``)."""


def table_shape(client: Client, table: str) -> TableShape:
    result = client.query(f"DESCRIBE TABLE {table}")
    return TableShape.from_columns((row[0], row[1]) for row in result.result_rows)


class TableWriter:
    """Writes rows of one table; retries until ClickHouse accepts them or ``give_up_s`` passes."""

    def __init__(
        self,
        client: Client,
        table: str,
        *,
        retry_s: float = 1.0,
        give_up_s: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table = table
        self.retry_s = retry_s
        self.give_up_s = give_up_s
        self._sleep = sleep
        self.flattener = RowFlattener(table_shape(client, table))
        self.rows_written = 0

    def write(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows (flattened dicts) as JSONEachRow; return how many."""
        block = to_json_each_row(rows)
        if not block:
            return 0
        return self._insert(block, block.count(b"\n") + 1, "JSONEachRow", INSERT_SETTINGS)

    def write_messages(
        self,
        messages: Sequence[bytes],
        fmt: str = "JSONAsString",
        settings: Mapping[str, Any] | None = None,
        *,
        retry_rejected: bool = True,
    ) -> int:
        """Insert JSON messages unchanged, one row each: into a one-String-column table
        (FORMAT JSONAsString, a landing table whose materialized view parses them), or with
        ``fmt="JSONEachRow"`` into a table whose columns are the messages' fields.

        Without ``retry_rejected``, an error the server answered (a message it cannot read)
        raises `InsertRejected` at once; a lost connection is still retried."""
        if not messages:
            return 0

        def body() -> Generator[bytes, None, None]:
            # streamed a slice at a time: one joined block of a 40,000-message batch is ~32 MB,
            # and the client would copy it once more to put the INSERT statement in front
            for begin in range(0, len(messages), STREAM_SLICE):
                yield b"\n".join(messages[begin : begin + STREAM_SLICE]) + b"\n"

        return self._insert(body, len(messages), fmt, settings or {}, retry_rejected)

    def write_stream(
        self,
        chunks: Callable[[], Generator[bytes, None, None]],
        rows: int | Callable[[], int],
        fmt: str,
        settings: Mapping[str, Any] | None = None,
        *,
        retry_rejected: bool = True,
    ) -> int:
        """Insert the chunks a fresh call of ``chunks`` yields (on every attempt) in one insert,
        as they come: made while the server reads, never all in memory. ``rows``: how many rows
        they hold, or what tells it once they were sent."""
        return self._insert(chunks, rows, fmt, settings or {}, retry_rejected)

    def _insert(
        self,
        block: bytes | Callable[[], Generator[bytes, None, None]],
        count: int | Callable[[], int],
        fmt: str,
        settings: Mapping[str, Any],
        retry_rejected: bool = True,
    ) -> int:
        """Insert ``block`` (or the chunks a fresh call of it yields, on every attempt)."""
        waited = 0.0
        while True:
            try:
                self.client.raw_insert(
                    self.table,
                    insert_block=block if isinstance(block, bytes) else block(),
                    fmt=fmt,
                    settings=dict(settings),
                )
            except Exception as exc:
                rejected = isinstance(exc, DatabaseError) and not isinstance(exc, OperationalError)
                if rejected and not retry_rejected:
                    raise InsertRejected(f"{self.table}: {exc}") from exc
                if waited >= self.give_up_s:
                    raise
                log.warning(
                    "insert of %d rows into %s failed (%s); retrying in %.0fs (waited %.0fs)",
                    count() if callable(count) else count,
                    self.table,
                    exc,
                    self.retry_s,
                    waited,
                )
                self._sleep(self.retry_s)
                waited += self.retry_s
                continue
            inserted = count() if callable(count) else count
            self.rows_written += inserted
            return inserted
