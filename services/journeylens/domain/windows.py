"""Tumbling event-time windows with a grace period, and the watermark that closes them.

A window ``[start, start + size)`` closes once ``start + size + grace <= watermark``. The watermark
is the largest event time seen (capped a little ahead of the clock so one browser with a wrong
clock cannot close every window), and flows on with the clock when no event time progress was
seen for ``idle_timeout_s`` (so a quiet journey still emits its windows). Replaying old data
keeps event time moving, so replays close the same windows the same way.

An event whose window already closed is *late*: it is counted (and stored raw elsewhere),
never silently dropped.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from journeylens.domain.clock import Clock

DEFAULT_WINDOW_S = 60
DEFAULT_GRACE_S = 30


def window_start(ts_epoch_s: float, size: int = DEFAULT_WINDOW_S) -> int:
    """Start (epoch seconds) of the tumbling window of ``size`` seconds holding ``ts_epoch_s``."""
    t = math.floor(ts_epoch_s)
    return t - t % size


def is_closed(start: int, watermark: float | None, size: int, grace: int) -> bool:
    """Whether the window starting at ``start`` is closed at ``watermark``."""
    return watermark is not None and start + size + grace <= watermark


_MINUTES: dict[str, int] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_seconds(value: Any) -> int:
    """Whole epoch seconds of an event timestamp as JSON gives it (ISO string), or a number.

    Fast path for the UTC ISO form pydantic writes (``2024-05-01T12:00:07.123Z``): the minute
    prefix is parsed once and cached. Naive datetimes are taken as UTC.
    """
    if isinstance(value, str):
        if (
            len(value) >= 20
            and value[16] == ":"
            and (value[-1] == "Z" or value.endswith("+00:00"))
            and value[17:19].isdigit()
        ):
            prefix = value[:16]
            base = _MINUTES.get(prefix)
            if base is None:
                if len(_MINUTES) > 50_000:
                    _MINUTES.clear()
                base = int(datetime.fromisoformat(prefix + ":00+00:00").timestamp())
                _MINUTES[prefix] = base
            return base + int(value[17:19])
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return math.floor(parsed.timestamp())
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return math.floor(moment.timestamp())
    if isinstance(value, int | float):
        return int(math.floor(value))
    raise TypeError(f"not a timestamp: {value!r}")


def iso_utc(ts_epoch_s: float) -> str:
    """``2024-05-01T12:00:00Z``: how the contracts write a UTC timestamp in JSON."""
    dt = datetime.fromtimestamp(ts_epoch_s, tz=UTC)
    text = dt.isoformat()
    return text.removesuffix("+00:00") + "Z"


class WindowCloser:
    """Tracks open windows and the watermark; says which windows are closed.

    Per batch the worker calls `observe` with the batch's max event time and window starts,
    then `pop_closed` to learn which windows to finalize. State is serialisable so a worker
    can rebuild it (e.g. from the keys of its window table after a rebalance).
    """

    def __init__(
        self,
        size_s: int = DEFAULT_WINDOW_S,
        grace_s: int = DEFAULT_GRACE_S,
        *,
        clock: Clock | None = None,
        max_future_s: float = 60.0,
        idle_timeout_s: float | None = 60.0,
    ) -> None:
        if size_s <= 0 or grace_s < 0:
            raise ValueError("window size must be > 0 and grace >= 0")
        self.size_s = size_s
        self.grace_s = grace_s
        self.clock = clock
        self.max_future_s = max_future_s
        self.idle_timeout_s = idle_timeout_s
        self.event_watermark: float | None = None
        self._progress_at: float | None = None
        self.open: set[int] = set()
        self.late_events = 0

    @property
    def watermark(self) -> float | None:
        """Event-time watermark, advanced by the clock when event time has been idle."""
        wm = self.event_watermark
        clock = self.clock
        if clock is None or self.idle_timeout_s is None or wm is None or self._progress_at is None:
            return wm
        idle_for = clock.time() - self._progress_at - self.idle_timeout_s
        return wm + idle_for if idle_for > 0 else wm

    def observe(
        self, max_event_ts: float | None, windows: set[int] | frozenset[int] = frozenset()
    ) -> None:
        """Record a batch: its largest event time and the windows it touched."""
        for start in windows:
            if not is_closed(start, self.watermark, self.size_s, self.grace_s):
                self.open.add(start)
        if max_event_ts is None:
            return
        if self.clock is not None:
            max_event_ts = min(max_event_ts, self.clock.time() + self.max_future_s)
        current = self.watermark
        self.event_watermark = max_event_ts if current is None else max(current, max_event_ts)
        self._progress_at = self.clock.time() if self.clock is not None else None

    def is_late(self, ts_epoch_s: float) -> bool:
        return is_closed(
            window_start(ts_epoch_s, self.size_s), self.watermark, self.size_s, self.grace_s
        )

    def count_late(self, n: int) -> None:
        self.late_events += n

    def pop_closed(self) -> list[int]:
        """Window starts that are now closed (oldest first); they are no longer tracked."""
        wm = self.watermark
        closed = sorted(s for s in self.open if is_closed(s, wm, self.size_s, self.grace_s))
        self.open.difference_update(closed)
        return closed

    def to_state(self) -> dict[str, Any]:
        return {
            "size_s": self.size_s,
            "grace_s": self.grace_s,
            "event_watermark": self.event_watermark,
            "progress_at": self._progress_at,
            "open": sorted(self.open),
            "late_events": self.late_events,
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        *,
        clock: Clock | None = None,
        idle_timeout_s: float | None = 60.0,
    ) -> WindowCloser:
        closer = cls(
            int(state["size_s"]), int(state["grace_s"]), clock=clock, idle_timeout_s=idle_timeout_s
        )
        closer.event_watermark = state.get("event_watermark")
        closer._progress_at = state.get("progress_at")
        closer.open = {int(s) for s in state.get("open", [])}
        closer.late_events = int(state.get("late_events", 0))
        return closer
