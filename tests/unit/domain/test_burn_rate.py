from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from journeylens.contracts.catalog import Slo
from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.domain.burn_rate import BurnAlert, BurnRateMonitor, sli_counts

from .detection_factories import T0, WINDOW, checkout, row, starts


def _rows(
    start: datetime, runs: int = 1000, failures: int = 0, **kw: Any
) -> list[JourneyAggregate]:
    raw = row("_journey", start, runs=runs, failures=failures, **kw)
    return [JourneyAggregate.model_validate(raw)]


def _run(monitor: BurnRateMonitor, failures: list[int]) -> list[list[BurnAlert]]:
    return [
        monitor.observe(_rows(s, failures=f))
        for s, f in zip(starts(T0, len(failures)), failures, strict=True)
    ]


def test_pages_at_14_4x_once_the_hour_has_burnt_enough() -> None:
    """checkout SLO 99 %: 15 % failures = 15× burn; the 1 h window reaches 14.4× after 58 min."""
    monitor = BurnRateMonitor(checkout())
    results = _run(monitor, [0] * 120 + [150] * 70)
    fired = [i - 120 for i, alerts in enumerate(results) if alerts]
    assert fired[0] == 57
    first = results[120 + 57]
    assert [(a.rule, a.severity) for a in first] == [("1h/5m", "page")]
    assert first[0].long_burn >= 14.4 and first[0].short_burn >= 14.4


def test_exactly_14_4x_pages_once_a_quarter_hour_is_covered() -> None:
    monitor = BurnRateMonitor(checkout())
    results = _run(monitor, [144] * 16)
    assert [i for i, r in enumerate(results) if r] == [14, 15]
    assert [a.rule for a in results[14]] == ["1h/5m"]
    assert abs(results[14][0].long_burn - 14.4) < 1e-9
    assert abs(results[14][0].short_burn - 14.4) < 1e-9


def test_just_below_14_4x_does_not_page_on_the_fast_rule() -> None:
    monitor = BurnRateMonitor(checkout())
    results = _run(monitor, [143] * 100)
    rules = {a.rule for alerts in results for a in alerts}
    assert "1h/5m" not in rules
    assert "6h/30m" in rules  # 14.3x still burns more than 6x: the slower page rule fires


def test_one_x_never_pages_and_tickets_after_18_hours() -> None:
    """1x spends the budget exactly over the SLO period: a ticket (3 d/6 h), never a page."""
    monitor = BurnRateMonitor(checkout())
    results = _run(monitor, [10] * (19 * 60))
    severities = {a.severity for alerts in results for a in alerts}
    assert "page" not in severities
    first_ticket = next(i for i, alerts in enumerate(results) if alerts)
    assert first_ticket == 18 * 60 - 1  # a quarter of 3 days observed
    assert results[first_ticket][0].rule == "3d/6h"


def test_half_budget_burn_raises_nothing() -> None:
    monitor = BurnRateMonitor(checkout())
    assert not any(_run(monitor, [5] * (19 * 60)))


def test_a_single_failed_probe_never_pages() -> None:
    monitor = BurnRateMonitor(checkout())
    failures = [0] * 30
    failures[7] = 1
    results = [
        monitor.observe(_rows(s, runs=1, failures=f))
        for s, f in zip(starts(T0, 30), failures, strict=True)
    ]
    assert not any(results)


def test_state_is_bounded_and_round_trips() -> None:
    monitor = BurnRateMonitor(checkout())
    _run(monitor, [3] * (4 * 24 * 60))
    tracker = monitor.trackers["checkout-availability"]
    assert tracker.fine is not None
    assert len(tracker.fine.buckets) <= 6 * 60 + 1
    assert len(tracker.coarse.buckets) <= 3 * 48 + 2
    state = json.loads(json.dumps(monitor.to_state()))
    restored = BurnRateMonitor(checkout())
    restored.load_state(state)
    later = T0 + 4 * 24 * 60 * WINDOW
    for i, f in enumerate([200] * 10):
        start = later + i * WINDOW
        assert restored.observe(_rows(start, failures=f)) == monitor.observe(
            _rows(start, failures=f)
        )
    assert restored.to_state() == monitor.to_state()


def test_error_rate_and_latency_slis() -> None:
    journey = checkout().model_copy(
        update={
            "slos": [
                Slo(name="errors", sli="error_rate", objective=0.99),
                Slo(name="fast", sli="latency", objective=0.9),
            ]
        }
    )
    rows = _rows(T0, views=200, error_rate=0.1, apdex=0.8)
    assert sli_counts(journey.slos[0], rows) == (180, 200)
    assert sli_counts(journey.slos[1], rows) == (160, 200)
    monitor = BurnRateMonitor(journey)
    alerts = []
    for start in starts(T0, 16):
        alerts = monitor.observe(_rows(start, views=200, error_rate=0.2, apdex=0.93))
    # 20x burn: the 1 h rule pages; the 6 h rule waits for 1.5 h of data
    assert [(a.slo, a.rule) for a in alerts] == [("errors", "1h/5m")]
