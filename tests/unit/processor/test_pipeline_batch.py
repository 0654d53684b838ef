"""The pipeline's batch path: raw RUM bytes kept as they arrived, dead letters, replays, and the
agent's reuse of decoded journey states."""

from __future__ import annotations

from typing import Any

import orjson

from journeylens.contracts.catalog import Catalog
from journeylens.processor.agents.experience import _TableStates
from journeylens.processor.bench import bench_catalog, make_events
from journeylens.processor.clock import SystemClock
from journeylens.processor.pipeline import (
    RUM,
    ExperiencePipeline,
    JourneyState,
    PipelineConfig,
    Record,
)


def _pipeline() -> ExperiencePipeline:
    return ExperiencePipeline(
        Catalog.model_validate(bench_catalog(2, 2)), PipelineConfig(), SystemClock()
    )


def _records(values: list[bytes], first_offset: int = 0) -> list[Record]:
    return [Record(RUM, 0, first_offset + i, v) for i, v in enumerate(values)]


def _aggregates(states: dict[str, JourneyState]) -> dict[str, Any]:
    return {j: orjson.loads(orjson.dumps([[*k, r.to_state()] for k, r in s.windows.items()]))
            for j, s in states.items()}  # fmt: skip


def test_valid_rum_messages_are_kept_as_bytes_and_bad_ones_dead_lettered() -> None:
    values = make_events(30, 2, 2, 1)
    bad = [b"not json", b"[1, 2]", orjson.dumps({"event_id": "x"})]
    out = _pipeline().process(_records([*values, *bad]), {})
    assert out.rum_messages == values
    reasons = [reason for _, reason in out.dead_letters]
    assert reasons[0].startswith("not JSON")
    assert reasons[1:] == ["a message must be a JSON object", "missing fields ['timestamp']"]
    assert set(out.states) == {"j0", "j1"}


def test_a_replayed_batch_counts_only_what_is_new() -> None:
    values = make_events(40, 2, 2, 1)
    pipeline = _pipeline()
    whole: dict[str, JourneyState] = {}
    out = pipeline.process(_records(values), whole)
    whole = {j: s for j, (_, s) in out.states.items()}
    split: dict[str, JourneyState] = {}
    first = pipeline.process(_records(values[:25]), split)
    split = {j: s for j, (_, s) in first.states.items()}
    again = pipeline.process(_records(values[10:], first_offset=10), split)  # 10..24 again
    assert again.replayed == 15
    assert _aggregates({j: s for j, (_, s) in again.states.items()}) == _aggregates(whole)


def test_table_states_reuse_a_decoded_state_only_for_the_same_blob() -> None:
    pipeline = _pipeline()
    state = pipeline.decode_state(None)
    state.partition = 3
    blob = state.encode()
    table = {b"j0": blob}
    decoded = {b"j0": (blob, state)}
    states = _TableStates(pipeline, table, decoded)
    assert states.get("j0") is state
    assert decoded == {}  # out of the cache while the batch runs
    states.release()
    table[b"j0"] = bytes(bytearray(blob))  # equal bytes, another blob (a restore): decoded again
    decoded[b"j0"] = (blob, state)
    again = _TableStates(pipeline, table, decoded).get("j0")
    assert again is not state and again is not None and again.partition == 3
    assert _TableStates(pipeline, table, {}).get("j1") is not None  # no blob: empty state
