"""Contract messages (as JSON dicts) → ClickHouse rows, in the migrations' column naming.

Column naming (see infra/clickhouse/migrations/0001_raw_events.sql): a nested object's fields
are flattened as ``<field>_<subfield>``; a list of objects becomes a Nested column whose
sub-columns are arrays named ``<field>.<subfield>``; dict-valued fields that are Maps in the
table stay dicts. Rows are written as JSONEachRow, so the server does the parsing.

Nested sub-columns must all have the same length, so :class:`TableShape` (read once from the
table) lists every sub-column of each Nested column, and missing keys are filled with null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

JOURNEY_LEVEL = "_journey"


@dataclass(frozen=True)
class TableShape:
    """What a row must look like: the Nested columns with their sub-columns, and the Maps."""

    nested: Mapping[str, Sequence[str]] = field(default_factory=dict)
    maps: frozenset[str] = frozenset()
    columns: frozenset[str] = frozenset()

    @classmethod
    def from_columns(cls, columns: Iterable[tuple[str, str]]) -> TableShape:
        """Build from (name, type) pairs as DESCRIBE TABLE returns them."""
        nested: dict[str, list[str]] = {}
        maps: set[str] = set()
        names: set[str] = set()
        for name, type_ in columns:
            names.add(name)
            if "." in name:
                parent, sub = name.split(".", 1)
                nested.setdefault(parent, []).append(sub)
            elif type_.startswith("Map("):
                maps.add(name)
        return cls(nested=nested, maps=frozenset(maps), columns=frozenset(names))


_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None), list})
"""Types that are never a Mapping: no ABC ``isinstance`` check (slow) for them."""
_NAME_CACHE_MAX = 4096


class RowFlattener:
    """Flattens messages of one table; cheap to call per message."""

    def __init__(self, shape: TableShape) -> None:
        self.shape = shape
        self._names: dict[tuple[str, str], str] = {}
        """(prefix, key) → column name: a window's ~1,000 aggregate rows share their names."""

    def flatten(self, message: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        row: dict[str, Any] = {}
        self._flatten_into(row, message, prefix)
        return row

    def _flatten_into(self, row: dict[str, Any], message: Mapping[str, Any], prefix: str) -> None:
        names = self._names
        maps, nested = self.shape.maps, self.shape.nested
        for key, value in message.items():
            name = names.get((prefix, key))
            if name is None:
                name = f"{prefix}{key}"
                if len(names) < _NAME_CACHE_MAX:
                    names[(prefix, key)] = name
            kind = type(value)
            mapping = kind is dict or (kind not in _SCALARS and isinstance(value, Mapping))
            if mapping and name not in maps:
                self._flatten_into(row, value, f"{name}_")
            elif name in nested:
                if value:
                    row.update(self._nested(name, value))
            else:
                row[name] = value

    def _nested(self, name: str, items: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        return {
            f"{name}.{sub}": [item.get(sub) for item in items] for sub in self.shape.nested[name]
        }

    def synthetic_rows(self, result: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One row per step of a probe run, plus a '_journey' row with the run's outcome."""
        run = {k: v for k, v in result.items() if k != "steps"}
        rows = [
            {
                **run,
                "step": JOURNEY_LEVEL,
                "step_index": 0,
                "kind": "run",
                "step_status": result["status"],
                "step_started_at": result["started_at"],
                "step_duration_ms": result["duration_ms"],
                "attempts": 1,
            }
        ]
        for index, step in enumerate(result.get("steps", []), start=1):
            renamed = {(f"step_{k}" if k in _RUN_FIELD_CLASHES else k): v for k, v in step.items()}
            rows.append({**run, **self.flatten(renamed), "step_index": index})
        return rows

    def alert_row(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A CloudEvent: envelope fields and its data's fields side by side."""
        envelope = {k: v for k, v in event.items() if k != "data"}
        return {**self.flatten(envelope), **self.flatten(event["data"])}


_RUN_FIELD_CLASHES = frozenset({"status", "started_at", "duration_ms", "error", "screenshot"})


def to_json_each_row(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(row) for row in rows)
