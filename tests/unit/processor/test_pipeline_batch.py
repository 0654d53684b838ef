"""The pipeline's batch path: raw RUM bytes kept as they arrived, dead letters, replays, and the
agent's reuse of decoded journey states."""

from __future__ import annotations

from typing import Any

import cramjam
import lz4.frame
import orjson

from journeylens.compression import lz4_frame
from journeylens.contracts.catalog import Catalog
from journeylens.processor.agents.experience import _StateCache, _TableStates
from journeylens.processor.bench import bench_catalog, make_events
from journeylens.processor.clock import SystemClock
from journeylens.processor.pipeline import (
    RUM,
    SYNTHETIC,
    BatchOutput,
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


def test_a_batch_decoded_in_chunks_gives_the_output_of_one_pass() -> None:
    values = make_events(200, 2, 2, 3)  # three windows, closed by the last events
    whole = _pipeline().process(_records(values), {}, chunk=len(values))
    chunked = _pipeline().process(_records(values), {}, chunk=7)  # journeys span chunks

    def by_id(out: BatchOutput) -> list[dict[str, Any]]:  # windows may close in another order
        return sorted(out.aggregates, key=lambda a: str(a["aggregate_id"]))

    assert whole.aggregates and by_id(chunked) == by_id(whole)
    assert chunked.rum_messages == whole.rum_messages == values
    assert (
        sum(a["rum"]["sampled_views"] for a in whole.aggregates if a["step"] == "_journey")
        == len(values) - 2
    )  # all but the open window's closers
    assert _aggregates({j: s for j, (_, s) in chunked.states.items()}) == _aggregates(
        {j: s for j, (_, s) in whole.states.items()}
    )


def _keyed(values: list[bytes]) -> list[Record]:
    return [r._replace(key=orjson.loads(r.value)["journey"].encode()) for r in _records(values)]


def test_records_keyed_by_journey_are_decoded_a_journey_at_a_time_with_the_same_result() -> None:
    values = make_events(200, 2, 2, 3)
    plain = _pipeline().process(_records(values), {})
    keyed = _pipeline().process(_keyed(values), {})

    assert sorted(keyed.rum_messages) == sorted(values)
    assert sorted(keyed.aggregates, key=lambda a: str(a["aggregate_id"])) == sorted(
        plain.aggregates, key=lambda a: str(a["aggregate_id"])
    )
    assert not keyed.dead_letters


def test_a_record_keyed_by_another_journey_is_routed_by_its_own() -> None:
    values = make_events(40, 2, 2, 1)
    records = _keyed(values)
    moved = orjson.loads(values[0])
    other = "j1" if moved["journey"] == "j0" else "j0"
    # keyed by one journey, names the other: decoded at once and routed by its own journey
    records[0] = records[0]._replace(key=other.encode())
    # keyed and named (in a nested field) by one journey, but its own journey is the other
    nested = {**orjson.loads(values[1]), "journey": other}
    nested["context"] = {**nested["context"], "journey": "j0" if other == "j1" else "j1"}
    records[1] = records[1]._replace(
        value=orjson.dumps(nested), key=nested["context"]["journey"].encode()
    )

    out = _pipeline().process(records, {})
    whole = _pipeline().process(_records([records[0].value, *values[2:]]), {})

    assert [reason for _, reason in out.dead_letters] == [
        f"keyed by journey {nested['context']['journey']!r} but its journey is {other!r}"
    ]
    assert sorted(out.rum_messages) == sorted([values[0], *values[2:]])
    assert _aggregates({j: s for j, (_, s) in out.states.items()}) == _aggregates(
        {j: s for j, (_, s) in whole.states.items()}
    )


def test_table_states_reuse_a_cached_state_only_while_the_table_holds_its_blob() -> None:
    pipeline = _pipeline()
    state = pipeline.decode_state(None)
    state.partition = 3
    blob = state.encode()
    table = {b"j0": blob}
    cache = _StateCache()
    cache.entries[b"j0"] = (blob, state)
    assert _TableStates(pipeline, table, cache).get("j0") is state
    table[b"j0"] = bytes(bytearray(blob))  # equal bytes, another blob (a restore): decoded again
    again = _TableStates(pipeline, table, cache).get("j0")
    assert again is not state and again is not None and again.partition == 3
    assert _TableStates(pipeline, table, cache).get("j1") is not None  # no blob: empty state


def test_table_states_use_the_state_whose_blob_is_not_written_yet() -> None:
    """Batch N+1 is processed while batch N's side effects (which write its blobs into the
    table) are still running: it starts from the state N left, not from the table's older blob."""
    pipeline = _pipeline()
    older = pipeline.decode_state(None).encode()
    state = pipeline.decode_state(None)
    state.partition = 1
    newer = state.encode()
    table = {b"j0": older}
    cache = _StateCache()
    out = BatchOutput(states={"j0": (1, state)})
    cache.processed(out, {"j0": newer})
    assert _TableStates(pipeline, table, cache).get("j0") is state
    table[b"j0"] = newer
    cache.written(b"j0", newer)
    assert cache.unwritten == {}
    assert _TableStates(pipeline, table, cache).get("j0") is state
    cache.clear()  # partitions revoked: the table's blob is decoded again
    assert _TableStates(pipeline, table, cache).get("j0") is not state


def test_a_decoded_blob_is_remembered_only_when_asked() -> None:
    pipeline = _pipeline()
    table = {b"j0": pipeline.decode_state(None).encode()}
    cache = _StateCache()
    _TableStates(pipeline, table, cache).get("j0")
    assert cache.entries == {}
    state = _TableStates(pipeline, table, cache, remember=True).get("j0")
    assert cache.entries == {b"j0": (table[b"j0"], state)}


def test_changelogged_state_decodes_to_the_same_state_and_old_zlib_blobs_still_do() -> None:
    """The changelog keeps sets and sketch buckets in their own order (LZ4 frame); decoded,
    it is the same state as the canonical form says. A blob of the earlier format (zlib,
    canonical JSON) decodes too."""
    import zlib

    pipeline = _pipeline()
    values = make_events(800, 2, 2, 3)[:-2]  # windows left open: no closers
    out = pipeline.process(_records(values), {})
    states = {j: s for j, (_, s) in out.states.items()}
    assert sum(len(s.windows) for s in states.values()) > 20
    for state in states.values():
        blob = state.encode()
        assert blob[:4] == b"\x04\x22\x4d\x18"  # an LZ4 frame
        again = pipeline.decode_state(blob)
        assert _aggregates({"j": again}) == _aggregates({"j": state})
        # written by python-lz4, read by cramjam too; frames written by cramjam still decode
        raw = lz4.frame.decompress(blob)
        assert bytes(cramjam.lz4.decompress(blob)) == raw
        by_cramjam = pipeline.decode_state(lz4_frame(raw))
        assert _aggregates({"j": by_cramjam}) == _aggregates({"j": state})
        assert (again.offsets, again.partition, again.stream_marks) == (
            state.offsets, state.partition, state.stream_marks,
        )  # fmt: skip
        old_doc = orjson.loads(orjson.dumps({
            "v": 1,
            "windows": [[*k, r.to_state()] for k, r in state.windows.items()],
            "closer": state.closer.to_state() if state.closer else None,
            "offsets": state.offsets, "detector": state.detector,
            "partition": state.partition, "stream_marks": state.stream_marks,
        }))  # fmt: skip
        legacy = pipeline.decode_state(zlib.compress(orjson.dumps(old_doc), 1))
        assert _aggregates({"j": legacy}) == _aggregates({"j": state})


def test_keyed_records_the_scan_leaves_are_decoded_checked_and_counted_once() -> None:
    values = make_events(120, 2, 2, 2)
    event = orjson.loads(values[5])
    rare = orjson.dumps({**event, "errors": [{"message": "boom", "count": 3}]})
    mistyped = orjson.dumps({**event, "event_id": "bad", "vitals": {"lcp_ms": "slow"}})
    mixed = [*values[:10], rare, mistyped, b'{"journey":"j0" oops', *values[10:]]
    keyed = _keyed([v for v in mixed if v.startswith(b'{"event_id"')])
    broken = Record(RUM, 0, len(mixed), mixed[12], b"j0")
    records = [*keyed, broken]
    records = [r._replace(offset=i) for i, r in enumerate(records)]

    out = _pipeline().process(records, {})
    plain = _pipeline().process(_records([*values, rare]), {})

    assert sorted(out.rum_messages) == sorted([*values, rare])
    reasons = [reason for _, reason in out.dead_letters]
    assert reasons[0] == "vitals.lcp_ms: not a number"  # it would have failed the batch
    assert reasons[1].startswith("not JSON") and len(reasons) == 2
    assert _aggregates({j: s for j, (_, s) in out.states.items()}) == _aggregates(
        {j: s for j, (_, s) in plain.states.items()}
    )
    # read again from the first record: nothing new is counted, every valid one kept raw again
    again = _pipeline().process(records, {j: s for j, (_, s) in out.states.items()})
    assert again.replayed == len(values) + 1
    assert sorted(again.rum_messages) == sorted(out.rum_messages)
    assert _aggregates({j: s for j, (_, s) in again.states.items()}) == _aggregates(
        {j: s for j, (_, s) in out.states.items()}
    )


def test_a_probe_result_aggregation_cannot_read_is_dead_lettered_and_the_rest_lands() -> None:
    good = {
        "run_id": "r1",
        "journey": "j0",
        "location": "paris",
        "status": "passed",
        "started_at": "2026-11-25T10:00:05.000Z",
        "duration_ms": 900.0,
        "steps": [{"step": "s0", "status": "passed", "duration_ms": 400.0}],
    }
    bad = {**good, "run_id": "r2", "duration_ms": "slow"}
    records = [
        Record(SYNTHETIC, 0, 0, orjson.dumps(bad), b"j0"),
        Record(SYNTHETIC, 0, 1, orjson.dumps(good), b"j0"),
    ]
    out = _pipeline().process(records, {})
    assert [reason for _, reason in out.dead_letters] == ["duration_ms: not a number"]
    assert [r["run_id"] for r in out.synthetic_results] == ["r1"]
    rows = out.states["j0"][1].windows
    journey_row = next(row for key, row in rows.items() if key[1] == "_journey")
    assert journey_row.synthetic is not None and journey_row.synthetic.runs == 1
