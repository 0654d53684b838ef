"""The experience agent's idle close does not hold the next batch up behind the last batch's
side effects, and what it does close is stored after them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from journeylens.contracts.catalog import Catalog
from journeylens.domain.clock import FakeClock
from journeylens.processor.agents.experience import ExperienceAgent
from journeylens.processor.bench import BASE, bench_catalog, make_events
from journeylens.processor.pipeline import (
    RUM,
    BatchOutput,
    ExperiencePipeline,
    PipelineConfig,
    Record,
)

IDLE_TIMEOUT_S = 120.0


def _agent_with_open_windows(clock: FakeClock) -> tuple[ExperienceAgent, dict[bytes, bytes]]:
    """An agent whose table holds two journeys with a minute of open windows (as the side
    effects of an earlier batch wrote them), and whose ClickHouse and topics are not used."""
    pipeline = ExperiencePipeline(
        Catalog.model_validate(bench_catalog(2, 2)),
        PipelineConfig(idle_timeout_s=IDLE_TIMEOUT_S),
        clock,
    )
    values = make_events(200, 2, 2, 1)[:200]  # without the closers that end every window
    out = pipeline.process([Record(RUM, 0, i, v) for i, v in enumerate(values)], {})
    assert not out.aggregates  # the windows are still open
    table = {journey.encode(): state.encode() for journey, (_, state) in out.states.items()}
    worker = SimpleNamespace(
        app=SimpleNamespace(
            consumer=SimpleNamespace(assignment=lambda: {TP(RUM, 0)}),
            consumer_generation_id=1,
        ),
        table=SimpleNamespace(data=table),
    )
    agent = ExperienceAgent(
        worker,  # type: ignore[arg-type]
        pipeline,
        None,  # type: ignore[arg-type]
        batch_max=1_000,
        batch_within_s=1.0,
    )
    return agent, table


def _recording_emit(agent: ExperienceAgent) -> list[BatchOutput]:
    emitted: list[BatchOutput] = []

    async def emit(out: BatchOutput, blobs: Mapping[str, bytes]) -> None:
        assert set(blobs) == set(out.states)
        emitted.append(out)

    agent._emit = emit  # type: ignore[method-assign]
    return emitted


def test_with_nothing_idle_the_close_does_not_wait_for_the_last_batchs_side_effects() -> None:
    clock = FakeClock(BASE + 60)
    agent, _ = _agent_with_open_windows(clock)
    emitted = _recording_emit(agent)

    async def run() -> None:
        storing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        agent._emitting = storing  # the last batch is still being stored
        # returns at once (it waited for the store before, holding the next batch up)
        await asyncio.wait_for(agent.close_idle_windows(), timeout=5)
        assert agent._emitting is storing  # still the batch's to wait for, not taken over
        assert not agent._lock.locked()
        storing.set_result(None)

    asyncio.run(run())
    assert emitted == []


def test_windows_closed_by_the_clock_are_stored_after_the_last_batchs_side_effects() -> None:
    clock = FakeClock(BASE + 60)
    agent, table = _agent_with_open_windows(clock)
    emitted = _recording_emit(agent)
    clock.advance(IDLE_TIMEOUT_S + 120)  # no traffic: the watermark flows on with the clock

    async def run() -> list[Any]:
        storing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        agent._emitting = storing
        closing = asyncio.ensure_future(agent.close_idle_windows())
        for _ in range(200):  # the close computes in threads, then waits for the store
            await asyncio.sleep(0.01)
            if agent._emitting is None:
                break
        assert agent._emitting is None  # it waits on the store now
        assert emitted == [] and not closing.done()
        storing.set_result(None)
        await asyncio.wait_for(closing, timeout=5)
        return emitted

    emitted = asyncio.run(run())
    assert len(emitted) == 1
    out = emitted[0]
    assert set(out.states) == {"j0", "j1"}
    assert out.aggregates  # the minute's windows, closed
    assert {row["journey"] for row in out.aggregates} == {"j0", "j1"}
    assert table.keys() == {b"j0", b"j1"}  # the recording emit wrote nothing
