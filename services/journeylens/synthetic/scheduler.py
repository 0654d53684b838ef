"""Run each journey at its interval from this probe's location, with jitter.

One probe process is one named location. Each journey has its own loop: the next run starts one
interval (± jitter) after the previous one started, or right after it finished when a run takes
longer than the interval, so two runs of the same journey never overlap. Shutdown stops new runs,
lets runs in flight finish (bounded by a grace period) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable

from journeylens.contracts.synthetic_results_v1 import SyntheticResult
from journeylens.synthetic.plan import JourneyPlan
from journeylens.synthetic.publisher import ResultSink
from journeylens.synthetic.runner import JourneyRunner

log = logging.getLogger(__name__)


class ProbeScheduler:
    def __init__(
        self,
        plans: Iterable[JourneyPlan],
        runner: JourneyRunner,
        sink: ResultSink,
        *,
        jitter_fraction: float = 0.1,
        shutdown_grace_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.plans = list(plans)
        self.runner = runner
        self.sink = sink
        self.jitter_fraction = max(0.0, min(jitter_fraction, 0.5))
        self.shutdown_grace_s = shutdown_grace_s
        self._rng = rng or random.Random()  # noqa: S311 - scheduling jitter, not security
        self._running: dict[str, asyncio.Lock] = {
            plan.journey_id: asyncio.Lock() for plan in self.plans
        }

    @property
    def location(self) -> str:
        return self.runner.location

    async def run_journey(self, plan: JourneyPlan) -> SyntheticResult | None:
        """Run a journey once and hand the result to the sink; None if it is already running."""
        lock = self._running.setdefault(plan.journey_id, asyncio.Lock())
        if lock.locked():
            log.warning(
                "journey %s is still running at %s: run skipped", plan.journey_id, self.location
            )
            return None
        async with lock:
            result = await self.runner.run(plan)
            log.info(
                "journey %s at %s: %s in %.0f ms%s",
                result.journey,
                result.location,
                result.status.value,
                result.duration_ms,
                f" ({result.error})" if result.error else "",
            )
            try:
                await self.sink.publish(result)
            except Exception:
                log.exception(
                    "could not publish the result of %s run %s", result.journey, result.run_id
                )
            return result

    async def run_once(self) -> list[SyntheticResult]:
        """Every journey once, one after the other (no run disturbs another's timings)."""
        results = [await self.run_journey(plan) for plan in self.plans]
        return [result for result in results if result is not None]

    def next_delay(self, interval_s: float) -> float:
        """The interval with ± jitter."""
        return interval_s * (1 + self._rng.uniform(-self.jitter_fraction, self.jitter_fraction))

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run every journey on its schedule until ``stop`` is set."""
        if not self.plans:
            log.warning("no journey to probe from location %s", self.location)
            await stop.wait()
            return
        loops = [
            asyncio.create_task(self._journey_loop(plan, stop), name=plan.journey_id)
            for plan in self.plans
        ]
        await stop.wait()
        _done, pending = await asyncio.wait(loops, timeout=self.shutdown_grace_s)
        for task in pending:
            log.warning(
                "journey %s still running after %.0f s: cancelled",
                task.get_name(),
                self.shutdown_grace_s,
            )
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    async def _journey_loop(self, plan: JourneyPlan, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        # Spread the first runs so journeys do not all start together.
        delay = self._rng.uniform(0, plan.interval_s * max(self.jitter_fraction, 0.1))
        while not await _stopped_within(stop, delay):
            started = loop.time()
            try:
                await self.run_journey(plan)
            except Exception:
                log.exception("journey %s: the probe run crashed", plan.journey_id)
            delay = max(0.0, self.next_delay(plan.interval_s) - (loop.time() - started))


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True as soon as ``stop`` is set."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
