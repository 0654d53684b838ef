"""What every probe step hands back to the runner, and how probe traffic is marked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from journeylens import __version__
from journeylens.contracts.synthetic_results_v1 import StepResult

PROBE_VERSION = __version__
PROBE_HEADER = "X-JourneyLens-Probe"
"""Request header carrying the run id on every probe request (RUM excludes marked traffic)."""
PROBE_UA_TOKEN = f"JourneyLensProbe/{PROBE_VERSION}"
"""User-agent token of every probe request."""
HTTP_USER_AGENT = f"Mozilla/5.0 (compatible; {PROBE_UA_TOKEN}; +https://journeylens.dev/probe)"


def with_probe_token(user_agent: str) -> str:
    """A user agent that carries the probe token (added once)."""
    return user_agent if PROBE_UA_TOKEN in user_agent else f"{user_agent} {PROBE_UA_TOKEN}"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepOutcome:
    """One attempt of one step."""

    result: StepResult
    extracted: dict[str, str] = field(default_factory=dict)
    network_error: bool = False
    """The attempt failed on the network (DNS, connect, timeout): the runner may retry it."""
    retry_safe: bool = True
    """False when a retry could repeat a side effect (a non-idempotent request that may have
    reached the server before the network failed): the runner then does not retry."""
    probe_error: bool = False
    """The probe itself could not run the step (no browser, a bug): not retried, run error."""

    @property
    def passed(self) -> bool:
        return self.result.status == "passed"
