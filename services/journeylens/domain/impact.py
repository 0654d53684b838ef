"""Business impact of an incident: sessions affected, conversion drop, revenue at risk.

Per unhealthy window:

- sessions affected: the RUM sessions of the affected segment when the incident is explained by
  one, else of the journey (the ``_journey`` row, or the busiest step row without one);
- conversion: the ``_journey`` row's ``funnel.completion_rate`` against its baseline;
- lost completions = max(0, baseline_rate − current_rate) × sessions entered;
- revenue at risk = lost completions × journey.value_per_completion.

Over an incident the windows add up: the current rate is Σ completed / Σ entered, the baseline
rate is the entered-weighted mean of the per-window baselines, so lost completions equal
max(0, Σ baseline_i × entered_i − Σ completed_i).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate, SegmentDimension
from journeylens.contracts.experience_alerts_v1 import BusinessImpact


@dataclass(frozen=True)
class WindowImpact:
    sessions_affected: int
    sessions_entered: int
    sessions_completed: int
    baseline_rate: float | None


def journey_row(rows: Sequence[JourneyAggregate]) -> JourneyAggregate | None:
    """The whole-journey, whole-population row of a window, if any."""
    for row in rows:
        if row.step == JOURNEY_LEVEL and row.segment_dimension == SegmentDimension.ALL:
            return row
    return None


def window_impact(
    rows: Sequence[JourneyAggregate],
    baseline_rate: float | None,
    segment: tuple[str, str] | None = None,
    step: str | None = None,
) -> WindowImpact:
    """What one unhealthy window cost (``segment`` = (dimension, value) if explained by one)."""
    whole = journey_row(rows)
    sessions = 0
    if segment is not None:
        matching = [
            r.rum.sessions
            for r in rows
            if r.segment_dimension.value == segment[0]
            and r.segment_value == segment[1]
            and r.step in (step, JOURNEY_LEVEL)
        ]
        sessions = max(matching, default=0)
    if sessions == 0:
        if whole is not None:
            sessions = whole.rum.sessions
        else:
            mains = [r.rum.sessions for r in rows if r.segment_dimension == SegmentDimension.ALL]
            sessions = max(mains, default=0)
    entered = completed = 0
    if whole is not None:
        entered = whole.funnel.sessions_entered
        completed = min(whole.funnel.sessions_completed, entered)
    return WindowImpact(sessions, entered, completed, baseline_rate)


@dataclass
class ImpactTotals:
    """Running business impact of one incident (serialisable)."""

    sessions_affected: int = 0
    entered: int = 0
    completed: int = 0
    baseline_completions: float = 0.0
    """Σ baseline_rate × entered over windows that had a baseline."""
    entered_with_baseline: int = 0
    completed_with_baseline: int = 0

    def add(self, window: WindowImpact) -> None:
        self.sessions_affected += window.sessions_affected
        self.entered += window.sessions_entered
        self.completed += window.sessions_completed
        if window.baseline_rate is not None:
            self.baseline_completions += window.baseline_rate * window.sessions_entered
            self.entered_with_baseline += window.sessions_entered
            self.completed_with_baseline += window.sessions_completed

    def business_impact(self, value_per_completion: float, currency: str) -> BusinessImpact:
        current = self.completed / self.entered if self.entered else None
        baseline = (
            self.baseline_completions / self.entered_with_baseline
            if self.entered_with_baseline
            else None
        )
        drop = baseline - current if baseline is not None and current is not None else None
        lost = max(0.0, self.baseline_completions - self.completed_with_baseline)
        return BusinessImpact(
            sessions_affected=self.sessions_affected,
            conversion_rate_baseline=_clean(baseline),
            conversion_rate_current=_clean(current),
            conversion_drop=_clean(drop),
            lost_completions=_clean(lost) or 0.0,
            revenue_at_risk=_clean(lost * value_per_completion) or 0.0,
            currency=currency,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "sessions_affected": self.sessions_affected,
            "entered": self.entered,
            "completed": self.completed,
            "baseline_completions": self.baseline_completions,
            "entered_with_baseline": self.entered_with_baseline,
            "completed_with_baseline": self.completed_with_baseline,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImpactTotals:
        return cls(
            sessions_affected=int(state["sessions_affected"]),
            entered=int(state["entered"]),
            completed=int(state["completed"]),
            baseline_completions=float(state["baseline_completions"]),
            entered_with_baseline=int(state["entered_with_baseline"]),
            completed_with_baseline=int(state["completed_with_baseline"]),
        )


def _clean(value: float | None) -> float | None:
    """Round away float noise (12 significant digits) so equal inputs give equal outputs."""
    return None if value is None else float(f"{value:.12g}")


def business_impact(
    rows: Sequence[JourneyAggregate],
    baseline_rate: float | None,
    value_per_completion: float,
    currency: str = "EUR",
    segment: tuple[str, str] | None = None,
    step: str | None = None,
) -> BusinessImpact:
    """Impact of a single window (convenience over :class:`ImpactTotals`)."""
    totals = ImpactTotals()
    totals.add(window_impact(rows, baseline_rate, segment, step))
    return totals.business_impact(value_per_completion, currency)
