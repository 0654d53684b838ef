from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeylens.domain.clock import Clock, FakeClock
from journeylens.domain.windows import (
    WindowCloser,
    epoch_seconds,
    is_closed,
    iso_utc,
    window_start,
)

T = 1_741_003_200  # 2025-03-03T12:00:00Z, a window boundary


def test_window_start_is_tumbling() -> None:
    assert window_start(T) == T
    assert window_start(T + 59.999) == T
    assert window_start(T + 60) == T + 60
    assert window_start(T + 7, size=300) == T
    assert window_start(T - 0.5) == T - 60


def test_closed_only_after_end_plus_grace() -> None:
    assert not is_closed(T, None, 60, 30)
    assert not is_closed(T, T + 89.9, 60, 30)
    assert is_closed(T, T + 90, 60, 30)


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-03T12:00:07Z",
        "2025-03-03T12:00:07.999000Z",
        "2025-03-03T12:00:07.5+00:00",
        "2025-03-03T13:00:07+01:00",
        "2025-03-03T12:00:07",
        datetime(2025, 3, 3, 12, 0, 7, 250_000, tzinfo=UTC),
        datetime(2025, 3, 3, 12, 0, 7),
        T + 7.9,
        T + 7,
    ],
)
def test_epoch_seconds_of_every_timestamp_form(value: object) -> None:
    assert epoch_seconds(value) == T + 7


def test_iso_utc_matches_the_contract_json() -> None:
    assert iso_utc(T) == "2025-03-03T12:00:00Z"


def test_fake_clock() -> None:
    clock = FakeClock(datetime(2025, 3, 3, 12, tzinfo=UTC))
    assert isinstance(clock, Clock)
    assert clock.time() == T
    clock.advance(timedelta(seconds=90))
    assert clock.now() == datetime(2025, 3, 3, 12, 1, 30, tzinfo=UTC)
    clock.set(T)
    assert clock.time() == T
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_windows_close_in_order_once_the_watermark_passes_end_plus_grace() -> None:
    closer = WindowCloser(60, 30)
    closer.observe(T + 50, {T})
    assert closer.pop_closed() == []
    closer.observe(T + 89, {T + 60})
    assert closer.pop_closed() == []  # T closes at T + 90
    closer.observe(T + 205, {T + 120, T + 180})
    assert closer.pop_closed() == [T, T + 60]  # T + 120 closes at T + 210, T + 180 at T + 270
    assert closer.pop_closed() == []
    assert closer.open == {T + 120, T + 180}
    closer.observe(T + 100, set())  # event time never goes back
    assert closer.watermark == T + 205


def test_late_events_are_recognised() -> None:
    closer = WindowCloser(60, 30)
    assert not closer.is_late(T)  # nothing seen yet
    closer.observe(T + 95, {T, T + 60})
    assert closer.is_late(T + 59)
    assert not closer.is_late(T + 60)
    closer.count_late(2)
    assert closer.late_events == 2


def test_one_wrong_browser_clock_cannot_close_every_window() -> None:
    clock = FakeClock(T + 100)
    closer = WindowCloser(60, 30, clock=clock, max_future_s=60)
    closer.observe(T + 10_000, {T + 120})
    assert closer.watermark == T + 160  # capped at clock + max_future_s
    assert closer.pop_closed() == []  # T + 120 closes at T + 210


def test_idle_event_time_flows_with_the_clock() -> None:
    clock = FakeClock(T + 70)
    closer = WindowCloser(60, 30, clock=clock, idle_timeout_s=60)
    closer.observe(T + 65, {T + 60})
    assert closer.pop_closed() == []
    clock.advance(60)  # idle for exactly the timeout: nothing moves yet
    assert closer.watermark == T + 65
    clock.advance(100)
    assert closer.watermark == T + 165
    assert closer.pop_closed() == [T + 60]  # closes at T + 150


def test_replay_closes_the_same_windows_whatever_the_wall_clock() -> None:
    def replay(clock_at: float) -> list[list[int]]:
        closer = WindowCloser(60, 30, clock=FakeClock(clock_at), max_future_s=1e12)
        out = []
        for minute in range(5):
            closer.observe(T + minute * 60 + 59, {T + minute * 60})
            out.append(closer.pop_closed())
        return out

    assert replay(T) == replay(T + 86_400 * 365)


def test_state_round_trip() -> None:
    clock = FakeClock(T)
    closer = WindowCloser(60, 30, clock=clock)
    closer.observe(T + 30, {T})
    closer.count_late(3)
    again = WindowCloser.from_state(closer.to_state(), clock=clock)
    assert again.to_state() == closer.to_state()
    assert again.watermark == closer.watermark
