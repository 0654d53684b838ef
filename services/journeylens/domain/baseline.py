"""Seasonality-aware baseline of one metric (journey × step × metric).

Two estimators learn side by side from every finalized window:

- an EWMA of the value with an exponentially weighted mean absolute deviation (the spread),
  usable after a short warm-up;
- an hour-of-week profile (168 buckets, UTC), each bucket its own EW mean/deviation, used for a
  bucket once it has seen that hour in at least ``min_bucket_weeks`` distinct weeks.

The band is ``baseline ± max(k·σ̂, min_relative_width·|baseline|, min_absolute_width)`` with
``σ̂ ≈ 1.2533 × mean absolute deviation`` (normal noise), so a flat series does not alarm on
tiny wiggles. Windows flagged anomalous are learned ``anomalous_alpha_factor`` times slower, and
not at all before the warm-up is over, so an incident cannot poison (or seed) the baseline.

State is plain JSON (``to_state`` / ``from_state``); parameters live in code, not in state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

SIGMA_PER_MAD = 1.2533
"""Standard deviation per mean absolute deviation for normal noise (sqrt(pi/2))."""

HOURS_PER_WEEK = 168
_WEEK_S = 7 * 24 * 3600

Direction = Literal["above", "below"]


@dataclass(frozen=True)
class BaselineParams:
    alpha: float = 0.05
    """EWMA weight of a new window (≈ 20-window memory)."""
    bucket_alpha: float = 0.1
    """Weight of a new window inside its hour-of-week bucket."""
    anomalous_alpha_factor: float = 0.05
    """Anomalous windows are learned this many times slower (0 = never)."""
    k: float = 3.0
    """Band half-width in estimated standard deviations."""
    min_relative_width: float = 0.2
    min_absolute_width: float = 0.0
    warmup_windows: int = 10
    """Windows the EWMA needs before it gives a band."""
    min_bucket_weeks: int = 2
    min_bucket_samples: int = 10
    clip_sigmas: float = 6.0
    """Values further than this from the mean are clipped before learning (robustness)."""


@dataclass(frozen=True)
class Band:
    baseline: float
    spread: float
    low: float
    high: float
    source: Literal["profile", "ewma"]

    def violated_by(self, value: float, direction: Direction) -> bool:
        return value > self.high if direction == "above" else value < self.low


def hour_of_week(at: datetime) -> int:
    """0 = Monday 00:00–01:00 UTC … 167 = Sunday 23:00–24:00 UTC."""
    utc = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return utc.weekday() * 24 + utc.hour


def week_index(at: datetime) -> int:
    utc = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return math.floor(utc.timestamp() / _WEEK_S)


def _compact(value: float) -> float:
    """7 significant digits: far below any band width, and the JSON state stays small."""
    return float(f"{value:.7g}")


@dataclass
class EwStat:
    """EW mean and EW mean absolute deviation of a series."""

    mean: float = 0.0
    mad: float = 0.0
    n: int = 0

    def update(self, value: float, alpha: float, clip_sigmas: float) -> None:
        if self.n == 0:
            self.mean, self.mad, self.n = _compact(value), 0.0, 1
            return
        weight = max(alpha, 1.0 / (self.n + 1))
        if self.mad > 0:
            limit = clip_sigmas * SIGMA_PER_MAD * self.mad
            value = min(max(value, self.mean - limit), self.mean + limit)
        deviation = abs(value - self.mean)
        self.mean = _compact(self.mean + weight * (value - self.mean))
        self.mad = _compact(self.mad + weight * (deviation - self.mad))
        self.n += 1

    def update_slowly(self, value: float, alpha: float, clip_sigmas: float) -> None:
        """Learn with a fixed (small) weight, no warm-up boost."""
        if self.mad > 0:
            limit = clip_sigmas * SIGMA_PER_MAD * self.mad
            value = min(max(value, self.mean - limit), self.mean + limit)
        self.mad = _compact(self.mad + alpha * (abs(value - self.mean) - self.mad))
        self.mean = _compact(self.mean + alpha * (value - self.mean))

    def to_state(self) -> list[float]:
        return [self.mean, self.mad, self.n]  # repr floats round-trip JSON exactly

    @classmethod
    def from_state(cls, state: list[Any]) -> EwStat:
        return cls(mean=float(state[0]), mad=float(state[1]), n=int(state[2]))


@dataclass
class _Bucket:
    stat: EwStat
    weeks: int = 0
    last_week: int = -1


class Baseline:
    """Baseline and band of one metric; learns one value per window."""

    def __init__(self, params: BaselineParams | None = None) -> None:
        self.params = params or BaselineParams()
        self.ewma = EwStat()
        self._buckets: dict[int, _Bucket] = {}

    @property
    def samples(self) -> int:
        return self.ewma.n

    @property
    def ready(self) -> bool:
        return self.ewma.n >= self.params.warmup_windows

    def band(self, at: datetime) -> Band | None:
        """The expected range at ``at`` (window start), or None while warming up."""
        p = self.params
        bucket = self._buckets.get(hour_of_week(at))
        source: Literal["profile", "ewma"]
        if (
            bucket is not None
            and bucket.weeks >= p.min_bucket_weeks
            and bucket.stat.n >= p.min_bucket_samples
        ):
            stat, source = bucket.stat, "profile"
        elif self.ready:
            stat, source = self.ewma, "ewma"
        else:
            return None
        spread = SIGMA_PER_MAD * stat.mad
        half = max(p.k * spread, p.min_relative_width * abs(stat.mean), p.min_absolute_width)
        return Band(
            baseline=stat.mean,
            spread=spread,
            low=stat.mean - half,
            high=stat.mean + half,
            source=source,
        )

    def update(self, value: float, at: datetime, *, anomalous: bool = False) -> None:
        """Learn one window's value; anomalous windows are learned slowly (or skipped)."""
        if not math.isfinite(value):
            return
        p = self.params
        how = hour_of_week(at)
        bucket = self._buckets.get(how)
        if anomalous:
            slow = p.alpha * p.anomalous_alpha_factor
            if slow <= 0 or not self.ready:
                return
            self.ewma.update_slowly(value, slow, p.clip_sigmas)
            if bucket is not None and bucket.stat.n > 0:
                bucket.stat.update_slowly(
                    value, p.bucket_alpha * p.anomalous_alpha_factor, p.clip_sigmas
                )
            return
        self.ewma.update(value, p.alpha, p.clip_sigmas)
        if bucket is None:
            bucket = self._buckets[how] = _Bucket(stat=EwStat())
        week = week_index(at)
        if week != bucket.last_week:
            bucket.weeks += 1
            bucket.last_week = week
        bucket.stat.update(value, p.bucket_alpha, p.clip_sigmas)

    def to_state(self) -> dict[str, Any]:
        return {
            "ewma": self.ewma.to_state(),
            "buckets": {
                str(how): [*b.stat.to_state(), b.weeks, b.last_week]
                for how, b in sorted(self._buckets.items())
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], params: BaselineParams | None = None) -> Baseline:
        baseline = cls(params)
        baseline.ewma = EwStat.from_state(state["ewma"])
        for key, raw in state.get("buckets", {}).items():
            baseline._buckets[int(key)] = _Bucket(
                stat=EwStat.from_state(raw[:3]), weeks=int(raw[3]), last_week=int(raw[4])
            )
        return baseline
