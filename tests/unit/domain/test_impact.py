from __future__ import annotations

from typing import Any

from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.contracts.experience_alerts_v1 import AlertEvent
from journeylens.domain.detector import Detector
from journeylens.domain.impact import ImpactTotals, business_impact, window_impact

from .detection_factories import T0, WINDOW, demo_catalog, row, starts, window


def _parse(rows: list[dict[str, Any]]) -> list[JourneyAggregate]:
    return [JourneyAggregate.model_validate(r) for r in rows]


def test_one_window_numbers_are_exact() -> None:
    rows = _parse(
        [
            row("payment", T0, views=250, sessions=150),
            row("_journey", T0, views=300, sessions=180, entered=200, completed=40),
        ]
    )
    impact = business_impact(rows, baseline_rate=0.3, value_per_completion=85.0)
    assert impact.sessions_affected == 180
    assert impact.conversion_rate_baseline == 0.3
    assert impact.conversion_rate_current == 0.2
    assert impact.conversion_drop == 0.1
    assert impact.lost_completions == 20.0  # (0.3 − 0.2) × 200
    assert impact.revenue_at_risk == 1700.0  # 20 × 85
    assert impact.currency == "EUR"


def test_sessions_of_the_explaining_segment() -> None:
    rows = _parse(
        [
            row("payment", T0, sessions=150),
            row("payment", T0, segment=("country", "FR"), sessions=42),
            row("_journey", T0, sessions=180, entered=200, completed=40),
        ]
    )
    assert window_impact(rows, 0.3, ("country", "FR"), "payment").sessions_affected == 42
    assert window_impact(rows, 0.3, ("country", "DE"), "payment").sessions_affected == 180


def test_conversion_up_is_no_loss_and_no_baseline_is_no_estimate() -> None:
    rows = _parse([row("_journey", T0, entered=100, completed=50)])
    better = business_impact(rows, 0.3, 85.0)
    assert better.conversion_drop == -0.2
    assert better.lost_completions == 0.0 and better.revenue_at_risk == 0.0
    unknown = business_impact(rows, None, 85.0)
    assert unknown.conversion_rate_baseline is None and unknown.conversion_drop is None
    assert unknown.conversion_rate_current == 0.5
    assert unknown.lost_completions == 0.0


def test_totals_over_an_incident_add_up() -> None:
    totals = ImpactTotals()
    w1 = _parse([row("_journey", T0, sessions=100, entered=100, completed=10)])
    w2 = _parse([row("_journey", T0 + WINDOW, sessions=300, entered=300, completed=60)])
    totals.add(window_impact(w1, 0.3, None, None))
    totals.add(window_impact(w2, 0.25, None, None))
    impact = totals.business_impact(85.0, "EUR")
    assert impact.sessions_affected == 400
    # lost = (0.3×100 − 10) + (0.25×300 − 60) = 20 + 15
    assert impact.lost_completions == 35.0
    assert impact.revenue_at_risk == 35.0 * 85
    assert impact.conversion_rate_current == 70 / 400
    assert impact.conversion_rate_baseline == (30 + 75) / 400
    assert ImpactTotals.from_state(totals.to_state()) == totals


def test_incident_reports_revenue_at_risk_from_the_learnt_conversion_baseline() -> None:
    """Conversion 30 % for 30 windows, then the payment step fails and conversion falls to 5 %."""
    detector = Detector(demo_catalog())
    for start in starts(T0, 30):
        assert detector.observe(window(start, entered=100, completed=30)).alerts == []
    broken = {"payment": {"error_rate": 0.4, "failures": 1}}
    alerts: list[dict[str, Any]] = []
    for start in starts(T0 + 30 * WINDOW, 3):
        out = detector.observe(
            window(start, step_overrides=broken, entered=100, completed=5, sessions=90)
        )
        alerts += out.alerts
    [event] = alerts
    impact = AlertEvent.model_validate(event).data.impact
    assert impact.sessions_affected == 90
    assert impact.conversion_rate_baseline == 0.3
    assert impact.conversion_rate_current == 0.05
    assert impact.lost_completions == 25.0
    assert impact.revenue_at_risk == 25.0 * 85.0
