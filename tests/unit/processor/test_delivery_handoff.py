"""The handoff between the batch-delivering consumer and the experience agent."""

from __future__ import annotations

import asyncio
import random
import weakref
from typing import Any

from faust.types import TP
from faust.utils.functional import consecutive_numbers
from hypothesis import given, settings
from hypothesis import strategies as st
from mode.utils.queues import FlowControlEvent

from journeylens.processor.delivery import Fetched, Handoff, first_run_end, interleave
from journeylens.processor.pipeline import Record


def _run(n: int, start: int = 0, generation: int = 1, value: bytes = b"v") -> Fetched:
    """``n`` fetched records of partition 0 from offset ``start``."""
    records = [Record("rum", 0, start + i, value, b"k") for i in range(n)]
    return Fetched(TP("rum", 0), generation, records, n * len(value))


def _messages(n: int, start: int = 0, generation: int = 1, value: bytes = b"v") -> list[Fetched]:
    return [_run(n, start, generation, value)]


def _offsets(runs: list[Fetched]) -> list[int]:
    return [record.offset for run in runs for record in run.records]


def _handoff(
    max_events: int,
    within_s: float = 0.05,
    generation: list[int] | None = None,
    max_bytes: int | None = None,
) -> tuple[Handoff, Any, FlowControlEvent]:
    flow = FlowControlEvent(initially_suspended=False)
    unacked: Any = weakref.WeakSet()
    current = (lambda: generation[0]) if generation is not None else None
    handoff = Handoff(
        ["rum"],
        flow,
        unacked,
        max_events=max_events,
        within_s=within_s,
        max_bytes=max_bytes,
        generation=current,
    )
    return handoff, unacked, flow


def test_take_splits_batches_at_max_events_in_fetch_order() -> None:
    async def run() -> None:
        handoff, unacked, _ = _handoff(max_events=4)
        first, second = _messages(3), _messages(3, start=3)
        await handoff.put(first)
        await handoff.put(second)
        assert len(unacked) == 2  # tracked from the moment they are queued, a run each
        taken = await handoff.take()
        assert _offsets(taken) == [0, 1, 2, 3]
        assert len(unacked) == 3  # the second run was split: both parts are unacked
        handoff.drop(taken)
        assert len(unacked) == 1  # what is still queued
        rest = await handoff.take()  # fewer than max: waits within_s, then returns them
        assert _offsets(rest) == [4, 5]
        assert rest[0].nbytes == 2 and rest[0].tp == TP("rum", 0)
        assert handoff.queued == 0 and handoff.queued_bytes == 0

    asyncio.run(run())


def test_clear_and_a_suspended_flow_forget_the_messages() -> None:
    async def run() -> None:
        handoff, unacked, flow = _handoff(max_events=10)
        batch = _messages(5)
        await handoff.put(batch)
        flow.clear()  # what Faust does to the agents' buffers when partitions are revoked
        assert handoff.queued == 0 and len(unacked) == 0
        flow.suspend()
        await handoff.put(_messages(5, start=5))  # fetched before the rebalance: dropped
        assert handoff.queued == 0 and len(unacked) == 0

    asyncio.run(run())


def test_put_waits_while_a_batch_worth_is_queued() -> None:
    async def run() -> None:
        handoff, _, _ = _handoff(max_events=2, within_s=0.0)
        await handoff.put(_messages(3))  # a fetched batch goes in whole, past max_events
        blocked = asyncio.ensure_future(handoff.put(_messages(1, start=3)))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        assert len(_offsets(await handoff.take())) == 2  # one left, below a batch: put goes on
        await asyncio.wait_for(blocked, 1)
        assert handoff.queued == 2

    asyncio.run(run())


def test_take_stops_at_max_bytes_but_always_takes_one_message() -> None:
    async def run() -> None:
        handoff, _, _ = _handoff(max_events=100, within_s=0.0, max_bytes=250)
        # one fetched batch: 3 messages of 100 bytes, then one of 1000
        await handoff.put([_run(3, value=b"x" * 100), _run(1, 3, value=b"y" * 1000)])
        assert handoff.queued == 4 and handoff.queued_bytes == 1300

        first = await handoff.take()
        assert _offsets(first) == [0, 1]  # a third would pass 250 bytes
        assert _offsets(await handoff.take()) == [2]  # 100 + 1000 > 250
        assert _offsets(await handoff.take()) == [3]  # larger than the bound: alone
        assert handoff.queued == 0 and handoff.queued_bytes == 0

    asyncio.run(run())


def test_put_waits_while_max_bytes_are_queued() -> None:
    async def run() -> None:
        handoff, _, _ = _handoff(max_events=100, within_s=0.0, max_bytes=250)
        await handoff.put(_messages(3, value=b"x" * 100))
        blocked = asyncio.ensure_future(handoff.put(_messages(1, start=3)))
        await asyncio.sleep(0.01)
        assert not blocked.done()  # 300 bytes queued, 3 events of 100 allowed
        assert len(_offsets(await handoff.take())) == 2
        await asyncio.wait_for(blocked, 1)
        assert handoff.queued == 2 and handoff.queued_bytes == 101

    asyncio.run(run())


def test_clear_keeps_what_was_fetched_in_the_current_generation() -> None:
    """Faust clears the queues again when the flow resumes after a rebalance, after the seek to
    the committed offsets: messages fetched since the seek would never be fetched again."""

    async def run() -> None:
        generation = [1]
        handoff, unacked, flow = _handoff(max_events=10, generation=generation)
        await handoff.put(_messages(3, generation=1))
        generation[0] = 2  # rebalanced; the consumer sought back to the committed offsets
        await handoff.put(_messages(2, start=3, generation=2))
        flow.resume()  # clears the managed queues
        assert handoff.queued == 2 and len(unacked) == 1
        assert _offsets(await handoff.take()) == [3, 4]

    asyncio.run(run())


def _faust_new_offset(acked: list[int], index: set[int], committed: int | None) -> int | None:
    """Faust's ``Consumer._new_offset`` for a partition without gaps, as it is written."""
    if not acked:
        return None
    acked.sort()
    if committed and min(acked) - committed > 1:
        return None
    batch = next(consecutive_numbers(acked))
    acked[: len(batch)] = []
    index.difference_update(batch)
    return batch[-1] + 1


@settings(max_examples=300, deadline=None)
@given(
    st.sets(st.integers(0, 400), max_size=120),
    st.one_of(st.none(), st.integers(0, 300)),
)
def test_first_run_end_commits_what_faust_would(offsets: set[int], committed: int | None) -> None:
    mine, theirs = list(offsets), list(offsets)
    random.Random(len(offsets)).shuffle(mine)  # acked in any order
    index_mine, index_theirs = set(offsets), set(offsets)
    while True:
        expected = _faust_new_offset(theirs, index_theirs, committed)
        assert first_run_end(mine, index_mine, committed) == expected
        assert mine == theirs and index_mine == index_theirs
        if expected is None:
            break
        committed = expected  # as Faust records the commit it made


def test_a_fetch_is_interleaved_by_partition_slices() -> None:
    """A backlog of one topic must not fill every batch before the other topic's records (the
    probe results of windows that backlog's last event closes would be late)."""
    rum = Fetched(TP("rum", 0), 1, [Record("rum", 0, i, b"xy") for i in range(25)], 50)
    probes = Fetched(TP("syn", 0), 1, [Record("synthetic", 0, i, b"z") for i in range(3)], 3)
    runs = interleave([rum, probes], max_events=40)  # slices of 40 // (2 * 2) = 10
    assert [(r.tp.topic, len(r.records)) for r in runs] == [
        ("rum", 10),
        ("syn", 3),
        ("rum", 10),
        ("rum", 5),
    ]
    assert [r.nbytes for r in runs] == [20, 3, 20, 10]
    assert _offsets([r for r in runs if r.tp.topic == "rum"]) == list(range(25))
    assert interleave([rum], max_events=4) == [rum]  # one partition: nothing to interleave
    small = interleave([rum, probes], max_events=1000)  # each fits a slice: kept whole
    assert small == [rum, probes]
