"""``synthetic.results.v1``: the result of one probe run of a journey, keyed by journey id."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from journeylens.contracts.common import Contract, NonNegative, TimingPhases, UtcDatetime, WebVitals

TOPIC = "synthetic.results.v1"


class RunStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    """An assertion or an expected status did not hold: the journey is broken."""
    ERROR = "error"
    """The probe itself could not run the journey (network error after retries, timeout)."""


class StepStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class FailedAssertion(Contract):
    assertion: str = Field(description="What was checked, e.g. 'status == 200'.")
    expected: str | None = None
    actual: str | None = None
    message: str


class StepResult(Contract):
    step: str
    kind: Literal["http", "browser"]
    status: StepStatus
    started_at: UtcDatetime
    duration_ms: NonNegative
    url: str | None = None
    method: str | None = None
    http_status: int | None = None
    timings: TimingPhases = Field(default_factory=TimingPhases)
    vitals: WebVitals | None = None
    failed_assertions: list[FailedAssertion] = Field(default_factory=list)
    error: str | None = None
    attempts: int = Field(default=1, ge=1)
    screenshot: str | None = Field(default=None, description="Reference to a saved screenshot.")


class SyntheticResult(Contract):
    """One probe run of a journey from one location."""

    run_id: str
    journey: str
    location: str
    status: RunStatus
    started_at: UtcDatetime
    finished_at: UtcDatetime
    duration_ms: NonNegative
    steps: list[StepResult]
    failed_step: str | None = None
    error: str | None = None
    screenshot: str | None = None
    probe_version: str = "0"
    schema_version: Literal[1] = 1
