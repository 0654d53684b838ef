"""RowFlattener: contract messages → rows in the migrations' column naming."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylens.contracts.catalog import Catalog
from journeylens.domain.clock import FakeClock
from journeylens.processor.bench import BASE, bench_catalog, make_events
from journeylens.processor.pipeline import ExperiencePipeline, PipelineConfig, Record
from journeylens.storage.rows import RowFlattener, TableShape

SHAPE = TableShape.from_columns(
    [
        ("journey", "String"),
        ("rum_lcp_ms_p75", "Nullable(Float64)"),
        ("synthetic_failed_assertions", "Map(String, UInt64)"),
        ("labels", "Map(String, String)"),
        ("rum_dependencies.host", "Array(String)"),
        ("rum_dependencies.p75_ms", "Array(Nullable(Float64))"),
        ("synthetic_locations.location", "Array(String)"),
        ("synthetic_locations.runs", "Array(UInt64)"),
    ]
)


def reference_flatten(shape: TableShape, message: Mapping[str, Any], prefix: str = "") -> dict:
    """The flattener as first written: the behaviour the fast one must keep."""
    row: dict[str, Any] = {}
    for key, value in message.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in shape.maps:
            row.update(reference_flatten(shape, value, f"{name}_"))
        elif name in shape.nested:
            if value:
                row.update(
                    {
                        f"{name}.{sub}": [item.get(sub) for item in value]
                        for sub in shape.nested[name]
                    }
                )
        else:
            row[name] = value
    return row


class Frozen(Mapping[str, Any]):
    """A Mapping that is not a dict (flattened like one)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_an_aggregate_flattens_into_prefixed_columns_maps_and_nested_arrays() -> None:
    message = {
        "journey": "checkout",
        "rum": {
            "lcp_ms": {"count": 3, "p75": 2100.5},
            "dependencies": [{"host": "cdn", "p75_ms": 80.0}, {"host": "pay"}],
        },
        "synthetic": {
            "failed_assertions": {"payment: status 500": 2},
            "locations": [],
            "extra": Frozen({"a": 1}),
        },
        "labels": {},
    }
    row = RowFlattener(SHAPE).flatten(message)
    assert row == {
        "journey": "checkout",
        "rum_lcp_ms_count": 3,
        "rum_lcp_ms_p75": 2100.5,
        "rum_dependencies.host": ["cdn", "pay"],
        "rum_dependencies.p75_ms": [80.0, None],
        "synthetic_failed_assertions": {"payment: status 500": 2},
        "synthetic_extra_a": 1,
        "labels": {},
    }


def _pipeline_aggregates() -> list[dict[str, Any]]:
    catalog = Catalog.model_validate(bench_catalog(2, 2))
    pipeline = ExperiencePipeline(catalog, PipelineConfig(), FakeClock(BASE + 3600))
    values = make_events(3000, 2, 2, 2)
    records = [
        Record("rum", 0, i, v, orjson.loads(v)["journey"].encode()) for i, v in enumerate(values)
    ]
    return pipeline.process(records, {}).aggregates


def test_every_aggregate_row_is_what_the_reference_flattener_gives() -> None:
    aggregates = _pipeline_aggregates()
    assert len(aggregates) > 20
    flattener = RowFlattener(SHAPE)
    for _ in range(2):  # the second pass reads the cached column names
        for aggregate in aggregates:
            assert flattener.flatten(aggregate) == reference_flatten(SHAPE, aggregate)


keys = st.sampled_from(["journey", "rum", "lcp_ms", "p75", "labels", "dependencies", "x"])
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text())
documents = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.dictionaries(keys, inner, max_size=4),
        st.lists(st.dictionaries(keys, inner, max_size=3), max_size=3),
        st.dictionaries(keys, inner, max_size=3).map(Frozen),
    ),
    max_leaves=20,
)


@settings(max_examples=500)
@given(st.dictionaries(keys, documents, max_size=5))
def test_any_message_flattens_as_the_reference_does(message: dict[str, Any]) -> None:
    assert _outcome(RowFlattener(SHAPE).flatten, message) == _outcome(
        lambda m: reference_flatten(SHAPE, m), message
    )


def _outcome(flatten: Any, message: dict[str, Any]) -> tuple[str, Any]:
    """The row, or the error (a Nested column given something else than a list of objects)."""
    try:
        return "row", flatten(message)
    except (AttributeError, TypeError) as exc:
        return "error", type(exc)
