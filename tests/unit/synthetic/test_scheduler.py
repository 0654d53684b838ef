"""The scheduler: runs at the interval, never two runs of a journey at once, clean stop."""

from __future__ import annotations

import asyncio

from journeylens.contracts.synthetic_results_v1 import RunStatus, SyntheticResult
from journeylens.synthetic.outcome import utc_now
from journeylens.synthetic.plan import JourneyPlan
from journeylens.synthetic.runner import JourneyRunner
from journeylens.synthetic.scheduler import ProbeScheduler


def plan(journey_id: str, interval_s: float) -> JourneyPlan:
    return JourneyPlan(journey_id, journey_id, interval_s, ("unit",), {}, ())


class SlowRunner(JourneyRunner):
    def __init__(self, seconds: float) -> None:
        super().__init__(location="unit")
        self.seconds = seconds
        self.active: dict[str, int] = {}
        self.max_active = 0
        self.runs: list[str] = []

    async def run(self, plan: JourneyPlan, run_id: str | None = None) -> SyntheticResult:
        self.active[plan.journey_id] = self.active.get(plan.journey_id, 0) + 1
        self.max_active = max(self.max_active, self.active[plan.journey_id])
        started = utc_now()
        await asyncio.sleep(self.seconds)
        self.active[plan.journey_id] -= 1
        self.runs.append(plan.journey_id)
        return SyntheticResult(
            run_id="r",
            journey=plan.journey_id,
            location="unit",
            status=RunStatus.PASSED,
            started_at=started,
            finished_at=utc_now(),
            duration_ms=self.seconds * 1000,
            steps=[],
        )


class Sink:
    def __init__(self) -> None:
        self.results: list[SyntheticResult] = []

    async def publish(self, result: SyntheticResult) -> None:
        self.results.append(result)


async def test_runs_at_interval_without_overlap_and_stops_cleanly() -> None:
    runner, sink = SlowRunner(seconds=0.08), Sink()
    scheduler = ProbeScheduler([plan("a", 0.05), plan("b", 0.1)], runner, sink, jitter_fraction=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert runner.max_active == 1  # runs slower than the interval never overlap
    assert runner.runs.count("a") >= 3 and runner.runs.count("b") >= 2
    assert len(sink.results) == len(runner.runs)  # the run in flight at stop finished and published


async def test_a_second_trigger_while_running_is_skipped() -> None:
    runner, sink = SlowRunner(seconds=0.1), Sink()
    scheduler = ProbeScheduler([plan("a", 60)], runner, sink)
    first, second = await asyncio.gather(
        scheduler.run_journey(scheduler.plans[0]), scheduler.run_journey(scheduler.plans[0])
    )
    assert first is not None and second is None and runner.max_active == 1


def test_jitter_stays_within_bounds() -> None:
    scheduler = ProbeScheduler([], SlowRunner(0), Sink(), jitter_fraction=0.1)
    delays = [scheduler.next_delay(60) for _ in range(200)]
    assert all(54 <= d <= 66 for d in delays) and len(set(delays)) > 1
