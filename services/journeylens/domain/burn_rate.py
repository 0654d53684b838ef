"""SLO burn rate per journey, multiwindow and multi-burn-rate (Google SRE workbook, ch. 5).

burn rate = (bad / total over a window) / (1 − objective). An alert rule fires when both its
long window and its short (confirmation) window burn at least at its factor:

============  ==========  ===========  ========
long window   short        burn factor  severity
============  ==========  ===========  ========
1 h           5 min        14.4         page
6 h           30 min       6            page
3 d           6 h          1            ticket
============  ==========  ===========  ========

SLIs come from the journey-level row (``step == "_journey"``, segment ``all``), or the sum of the
step rows when there is none:

- ``availability``: good = synthetic runs − failures, total = synthetic runs;
- ``error_rate``: good = received views without error, total = received views;
- ``latency``: good = satisfied (Apdex T), total = satisfied + tolerating + frustrated.

State: per SLO a bounded ring of good/total counts at window resolution over the last 6 h, and
30-minute buckets over the last 3 days (≈ 360 + 144 entries for 1-minute windows). No raw events.

Anti-noise: a rule is judged only once the journey has been observed for its short window and a
quarter of its long window (15 min, 1.5 h, 18 h), with at least ``min_long_events`` events and
``min_bad_events`` bad ones in the long window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from journeylens.contracts.catalog import Journey, Slo
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate, SegmentDimension

BurnSeverity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnRule:
    name: str
    long_s: int
    short_s: int
    factor: float
    severity: BurnSeverity


DEFAULT_RULES: tuple[BurnRule, ...] = (
    BurnRule("1h/5m", 3600, 300, 14.4, "page"),
    BurnRule("6h/30m", 6 * 3600, 1800, 6.0, "page"),
    BurnRule("3d/6h", 3 * 86400, 6 * 3600, 1.0, "ticket"),
)


@dataclass(frozen=True)
class BurnRateParams:
    rules: tuple[BurnRule, ...] = DEFAULT_RULES
    fine_horizon_s: int = 6 * 3600
    coarse_resolution_s: int = 1800
    coarse_horizon_s: int = 3 * 86400
    min_long_events: int = 10
    """A long window with fewer events than this cannot alert (cold start, idle journey)."""
    min_long_coverage: float = 0.25
    """A rule waits until the journey has been observed for this share of its long window (and
    at least its short window): right after a start the long window would only repeat the short
    one, and a few early failures would look like a 3-day burn."""
    min_bad_events: int = 3
    """A long window with fewer bad events than this cannot alert (one failed probe never pages)."""


@dataclass(frozen=True)
class BurnAlert:
    slo: str
    sli: str
    rule: str
    severity: BurnSeverity
    factor: float
    long_burn: float
    short_burn: float
    long_s: int
    short_s: int
    window_start: datetime


@dataclass
class CountRing:
    """good/total counts per time bucket, pruned beyond a horizon."""

    resolution_s: int
    horizon_s: int
    buckets: dict[int, list[int]] = field(default_factory=dict)

    def add(self, at_s: int, good: int, total: int) -> None:
        start = at_s - at_s % self.resolution_s
        bucket = self.buckets.setdefault(start, [0, 0])
        bucket[0] += good
        bucket[1] += total

    def prune(self, now_s: int) -> None:
        cutoff = now_s - self.horizon_s - self.resolution_s
        for start in [s for s in self.buckets if s < cutoff]:
            del self.buckets[start]

    def sums(self, now_s: int, span_s: int) -> tuple[int, int]:
        """Counts of the buckets starting in [now − span, now)."""
        good = total = 0
        for start, (g, t) in self.buckets.items():
            if now_s - span_s <= start < now_s:
                good += g
                total += t
        return good, total

    def to_state(self) -> list[list[int]]:
        return [[start, g, t] for start, (g, t) in sorted(self.buckets.items())]

    def load(self, state: list[list[int]]) -> None:
        self.buckets = {int(s): [int(g), int(t)] for s, g, t in state}


def sli_counts(slo: Slo, rows: Sequence[JourneyAggregate]) -> tuple[int, int]:
    """good, total of one window for an SLO's SLI."""
    mains = [r for r in rows if r.segment_dimension == SegmentDimension.ALL]
    journey_rows = [r for r in mains if r.step == JOURNEY_LEVEL]
    use = journey_rows or mains
    good = total = 0
    for row in use:
        if slo.sli == "availability":
            good += row.synthetic.runs - row.synthetic.failures
            total += row.synthetic.runs
        elif slo.sli == "error_rate":
            good += row.rum.sampled_views - min(row.rum.views_with_error, row.rum.sampled_views)
            total += row.rum.sampled_views
        else:
            good += row.rum.satisfied
            total += row.rum.satisfied + row.rum.tolerating + row.rum.frustrated
    return max(good, 0), total


class SloTracker:
    """Burn-rate state of one SLO."""

    def __init__(self, slo: Slo, params: BurnRateParams) -> None:
        self.slo = slo
        self.params = params
        self.fine: CountRing | None = None
        self.coarse = CountRing(params.coarse_resolution_s, params.coarse_horizon_s)
        self.first_seen_s: int | None = None
        """Start of the first window seen (for the coverage rule)."""

    def _counts(self, now_s: int, span_s: int) -> tuple[int, int]:
        assert self.fine is not None
        if span_s <= self.params.fine_horizon_s:
            return self.fine.sums(now_s, span_s)
        return self.coarse.sums(now_s, span_s)

    def burn(self, now_s: int, span_s: int) -> tuple[float, int, int]:
        """(burn rate, total events, bad events) over [now − span, now)."""
        good, total = self._counts(now_s, span_s)
        if total == 0:
            return 0.0, 0, 0
        budget = 1.0 - self.slo.objective
        return ((total - good) / total) / budget, total, total - good

    def observe(self, rows: Sequence[JourneyAggregate]) -> list[BurnAlert]:
        first = rows[0]
        start_s = int(first.window_start.timestamp())
        end_s = int(first.window_end.timestamp())
        if self.fine is None:
            self.fine = CountRing(max(end_s - start_s, 1), self.params.fine_horizon_s)
        if self.first_seen_s is None:
            self.first_seen_s = start_s
        good, total = sli_counts(self.slo, rows)
        if total > 0:
            self.fine.add(start_s, good, total)
            self.coarse.add(start_s, good, total)
        self.fine.prune(end_s)
        self.coarse.prune(end_s)
        alerts: list[BurnAlert] = []
        for rule in self.params.rules:
            observed = end_s - (self.first_seen_s or start_s)
            if observed < max(rule.short_s, self.params.min_long_coverage * rule.long_s):
                continue
            long_burn, long_total, long_bad = self.burn(end_s, rule.long_s)
            short_burn, _, _ = self.burn(end_s, rule.short_s)
            if long_total < self.params.min_long_events or long_bad < self.params.min_bad_events:
                continue
            # tiny epsilon: an SLI burning at exactly the factor fires despite float rounding
            if long_burn >= rule.factor - 1e-9 and short_burn >= rule.factor - 1e-9:
                alerts.append(
                    BurnAlert(
                        slo=self.slo.name,
                        sli=self.slo.sli,
                        rule=rule.name,
                        severity=rule.severity,
                        factor=rule.factor,
                        long_burn=long_burn,
                        short_burn=short_burn,
                        long_s=rule.long_s,
                        short_s=rule.short_s,
                        window_start=first.window_start,
                    )
                )
        return alerts

    def to_state(self) -> dict[str, Any]:
        return {
            "first_seen_s": self.first_seen_s,
            "fine_resolution_s": self.fine.resolution_s if self.fine else None,
            "fine": self.fine.to_state() if self.fine else [],
            "coarse": self.coarse.to_state(),
        }

    def load(self, state: dict[str, Any]) -> None:
        first = state.get("first_seen_s")
        self.first_seen_s = int(first) if first is not None else None
        resolution = state.get("fine_resolution_s")
        if resolution:
            self.fine = CountRing(int(resolution), self.params.fine_horizon_s)
            self.fine.load(state.get("fine", []))
        self.coarse.load(state.get("coarse", []))


class BurnRateMonitor:
    """All SLOs of one journey."""

    def __init__(self, journey: Journey, params: BurnRateParams | None = None) -> None:
        self.params = params or BurnRateParams()
        self.trackers = {slo.name: SloTracker(slo, self.params) for slo in journey.slos}

    def observe(self, rows: Sequence[JourneyAggregate]) -> list[BurnAlert]:
        alerts: list[BurnAlert] = []
        for name in sorted(self.trackers):
            alerts.extend(self.trackers[name].observe(rows))
        return alerts

    def to_state(self) -> dict[str, Any]:
        return {name: t.to_state() for name, t in sorted(self.trackers.items())}

    def load_state(self, state: dict[str, Any]) -> None:
        for name, raw in state.items():
            if name in self.trackers:
                self.trackers[name].load(raw)
