"""Time as the domain sees it: a `Clock` it is given, never `time.time()` called directly.

Workers pass a system clock (built outside ``domain/``); tests drive a `FakeClock`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock time, in UTC."""

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def time(self) -> float:
        """The current time as seconds since the epoch."""
        ...


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float | datetime = 0.0) -> None:
        self._t = _epoch(start)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, tz=UTC)

    def time(self) -> float:
        return self._t

    def set(self, when: float | datetime) -> None:
        self._t = _epoch(when)

    def advance(self, seconds: float | timedelta) -> None:
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError("a clock does not go backwards")
        self._t += step


def _epoch(when: float | datetime) -> float:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return float(when)
