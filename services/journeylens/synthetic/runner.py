"""Run one journey once from this location and describe it as a `SyntheticResult`.

Steps run in order, sharing variables (extracted values) and cookies. A step that fails on the
network (DNS, connect, timeout) is retried in place, at most ``max_network_retries`` times (a
non-idempotent request such as a payment POST only when it never left the probe: a timeout
after sending it may have charged the card, so it is not sent twice); any
other failure (status, assertion) is final at once. The first failing step ends the run: later
steps are reported as skipped, and the run names the step and the reason
(``"payment: expected status 200, got 500"``). A run whose step still fails on the network after
its retries has status ``error`` (the probe could not tell whether the journey works).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from journeylens.contracts.synthetic_results_v1 import (
    FailedAssertion,
    RunStatus,
    StepResult,
    StepStatus,
    SyntheticResult,
)
from journeylens.settings import ProbeSettings
from journeylens.synthetic.browser_step import BrowserSession, JourneyBrowser
from journeylens.synthetic.http_step import probe_client, run_http_step
from journeylens.synthetic.outcome import PROBE_VERSION, StepOutcome, utc_now
from journeylens.synthetic.plan import BrowserStepPlan, HttpStepPlan, JourneyPlan, StepPlan

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return uuid.uuid4().hex


@dataclass
class JourneyRunner:
    """Runs journeys from one probe location."""

    location: str
    max_network_retries: int = 2
    retry_delay_s: float = 0.5
    """Pause before retry n is n × this (linear back-off)."""
    screenshot_dir: Path = Path(".data/screenshots")
    browser: BrowserSession | None = None
    """Shared Chromium for browser steps; None when this probe runs HTTP journeys only."""

    @classmethod
    def from_settings(
        cls, settings: ProbeSettings, browser: BrowserSession | None = None
    ) -> JourneyRunner:
        return cls(
            location=settings.location,
            max_network_retries=settings.max_network_retries,
            screenshot_dir=settings.screenshot_dir,
            browser=browser,
        )

    async def run(self, plan: JourneyPlan, run_id: str | None = None) -> SyntheticResult:
        run_id = run_id or new_run_id()
        if self.browser is not None and plan.uses_browser:
            # Launch Chromium (first run only) before the clock starts; a failure to launch
            # shows again in the first browser step, as a probe error.
            with contextlib.suppress(Exception):
                await self.browser.browser()
        variables = {**plan.variables, "run_id": run_id, "location": self.location}
        started_at = utc_now()
        started = time.perf_counter()
        steps: list[StepResult] = []
        status, failed_step, error, screenshot = RunStatus.PASSED, None, None, None
        browser = (
            JourneyBrowser(self.browser, run_id, plan.journey_id, self.screenshot_dir)
            if self.browser is not None and plan.uses_browser
            else None
        )
        try:
            async with probe_client(run_id) as client:
                for index, step in enumerate(plan.steps):
                    outcome = await self._run_with_retries(step, client, browser, variables)
                    steps.append(outcome.result)
                    if outcome.passed:
                        variables.update(outcome.extracted)
                        continue
                    broken_probe = outcome.network_error or outcome.probe_error
                    status = RunStatus.ERROR if broken_probe else RunStatus.FAILED
                    failed_step = step.step_id
                    error = f"{step.step_id}: {outcome.result.error or 'failed'}"
                    if outcome.network_error and outcome.result.attempts > 1:
                        error += f" (after {outcome.result.attempts} attempts)"
                    screenshot = outcome.result.screenshot
                    steps.extend(_skipped(later) for later in plan.steps[index + 1 :])
                    break
        finally:
            if browser is not None:
                await browser.close()
        return SyntheticResult(
            run_id=run_id,
            journey=plan.journey_id,
            location=self.location,
            status=status,
            started_at=started_at,
            finished_at=utc_now(),
            duration_ms=(time.perf_counter() - started) * 1000,
            steps=steps,
            failed_step=failed_step,
            error=error,
            screenshot=screenshot,
            probe_version=PROBE_VERSION,
        )

    async def _run_with_retries(
        self,
        step: StepPlan,
        client: httpx.AsyncClient,
        browser: JourneyBrowser | None,
        variables: dict[str, str],
    ) -> StepOutcome:
        attempt = 1
        while True:
            outcome = await self._run_once(step, client, browser, variables)
            outcome.result.attempts = attempt
            retry = outcome.network_error and outcome.retry_safe
            if not retry or attempt > self.max_network_retries:
                return outcome
            log.info(
                "journey step %s: network error (%s), retry %d/%d",
                step.step_id,
                outcome.result.error,
                attempt,
                self.max_network_retries,
            )
            await asyncio.sleep(self.retry_delay_s * attempt)
            attempt += 1

    async def _run_once(
        self,
        step: StepPlan,
        client: httpx.AsyncClient,
        browser: JourneyBrowser | None,
        variables: dict[str, str],
    ) -> StepOutcome:
        try:
            if isinstance(step, HttpStepPlan):
                return await run_http_step(client, step, variables)
            if browser is None:
                return _probe_error(step, "no browser available to this probe")
            return await browser.run_step(step, variables)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a probe bug or a broken browser must not kill the probe
            log.exception("step %s could not run", step.step_id)
            return _probe_error(step, f"probe error: {type(exc).__name__}: {exc}")


def _skipped(step: StepPlan) -> StepResult:
    return StepResult(
        step=step.step_id,
        kind=step.kind,
        status=StepStatus.SKIPPED,
        started_at=utc_now(),
        duration_ms=0,
    )


def _probe_error(step: StepPlan, message: str) -> StepOutcome:
    """The probe itself could not run the step: the run ends in status error."""
    return StepOutcome(
        StepResult(
            step=step.step_id,
            kind="browser" if isinstance(step, BrowserStepPlan) else "http",
            status=StepStatus.FAILED,
            started_at=utc_now(),
            duration_ms=0,
            failed_assertions=[FailedAssertion(assertion="probe runs", message=message)],
            error=message,
        ),
        probe_error=True,
    )
