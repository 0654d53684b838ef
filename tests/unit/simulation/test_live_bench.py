"""The live detection run's pure parts: its schedule, its traffic, its judging and its report.

The run itself (collector and worker processes, Kafka, ClickHouse) is
tests/integration/test_detection_live.py.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from journeylens.collector.formats import journeylens as beacon_format
from journeylens.collector.formats.base import RequestMeta
from journeylens.contracts.catalog import load_catalog
from journeylens.domain.catalog_match import CatalogMatcher
from journeylens.simulation.detection_bench import BenchConfig, BenchReport, render_table
from journeylens.simulation.live import beacon_for_page, pages_in_order
from journeylens.simulation.live_bench import (
    BASELINE_WARMUP_WINDOWS,
    LiveConfig,
    SendStats,
    Timeline,
    Watch,
    judge_live,
)
from journeylens.simulation.traffic import PaymentOutage, TrafficModel, TrafficProfile

REPO = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(REPO / "infra/catalog/demo-shop.yaml")
FIRING_EXAMPLE = json.loads(
    (REPO / "schemas/examples/experience.alerts/v1/checkout_incident_firing.json").read_text()
)
START = 1_795_600_800.0  # 2026-11-25T10:00:00Z


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


def _alert(journey: str, window_end: float, fingerprint: str, **evidence: Any) -> dict[str, Any]:
    alert = copy.deepcopy(FIRING_EXAMPLE)
    alert["time"] = _iso(window_end)
    alert["subject"] = journey
    alert["data"].update(journey=journey, fingerprint=fingerprint)
    alert["data"]["evidence"].update(evidence)
    return alert


def test_timeline_starts_on_a_window_boundary_and_spans_the_phases() -> None:
    config = LiveConfig(window_s=10, warmup_windows=12, fault_windows=4, recovery_windows=2)
    t = Timeline.plan(config, now=START + 3.4)
    assert t.start == START + 10  # the next boundary at least 2 s ahead
    assert t.injection == t.start + 120
    assert t.fault_end == t.injection + 40
    assert t.judged_end == t.fault_end + 20
    assert t.stop == t.judged_end + 20
    assert [t.phase(x) for x in (t.start, t.injection, t.fault_end, t.judged_end)] == [
        "warm-up",
        "fault",
        "recovery",
        "tail",
    ]


def test_config_needs_a_warmup_longer_than_the_baselines_own() -> None:
    with pytest.raises(ValueError, match="warm-up"):
        LiveConfig(warmup_windows=BASELINE_WARMUP_WINDOWS)
    with pytest.raises(KeyError, match="known"):
        LiveConfig(scenario="nope")
    assert LiveConfig(warmup_windows=15).armed_windows == 15 - BASELINE_WARMUP_WINDOWS


def test_span_of_a_minute_is_the_minute_draw_for_draw() -> None:
    a, b = TrafficModel(CATALOG, seed=3), TrafficModel(CATALOG, seed=3)
    for i in range(3):
        assert a.minute(START + 60 * i) == b.span(START + 60 * i, 60.0)


def test_short_spans_probe_every_journey_once_per_window_and_location() -> None:
    config = LiveConfig(window_s=10, sessions_per_minute=600)
    model = TrafficModel(CATALOG, config.profile, seed=2)
    probed = [j.id for j in CATALOG.journeys if j.probe is not None]
    for i in range(6):
        _, probes = model.span(START + 10 * i, 10.0)
        runs = sorted((r["journey"], r["location"]) for r in probes)
        expected = sorted((j, loc) for j in probed for loc in config.profile.probe_locations)
        assert runs == expected


def test_a_failed_payment_call_lands_on_the_payment_step_as_the_agent_sends_it() -> None:
    """The agent tags errors after ``step("checkout:payment")`` with that step; the collector's
    parser and the catalog then put the failed charge on ``payment``, not on the URL's step."""
    profile = TrafficProfile(peak_sessions_per_minute=600, trough_ratio=1.0)
    model = TrafficModel(CATALOG, profile, seed=4, faults=[PaymentOutage(START)])
    events: list[dict[str, Any]] = []
    for i in range(4):
        events += model.minute(START + 60 * i)[0]
    pages = [p for p in pages_in_order(events) if any(e.get("api_errors") for e in p)]
    payment_pages = [p for p in pages if p[0]["step"] == "payment"]
    assert payment_pages
    matcher = CatalogMatcher(CATALOG)
    meta = RequestMeta(app="demo-shop", received_at=datetime.fromtimestamp(START + 300, UTC))
    for page in payment_pages[:20]:
        parsed = beacon_format.parse(beacon_for_page(page), meta)
        failures = [e for e in parsed.events if e.api_errors]
        assert failures
        for event in failures:
            assert event.step_event == "checkout:payment"
            assert matcher.match("demo-shop", event.path, event.step_event).step == "payment"


def _watch(timeline: Timeline) -> Watch:
    watch = Watch(counted_from=timeline.injection)
    # an incident opened in the warm-up: a false alert
    watch.alerts.append((timeline.start + 95, _alert("search", timeline.start + 90, "f-1")))
    # the scenario's incident, first at the end of the third fault window, then an update
    third = timeline.injection + 30
    watch.alerts.append((third + 5.5, _alert("checkout", third, "f-2")))
    watch.alerts.append((third + 15.2, _alert("checkout", third + 10, "f-2")))
    # after the judged windows (the tail): not judged
    watch.alerts.append((timeline.stop, _alert("login", timeline.judged_end + 10, "f-3")))
    watch.close_delays.extend([4.0, 6.0, 7.0])
    return watch


def test_judging_splits_warmup_false_alerts_from_the_scenario_and_times_the_first() -> None:
    config = LiveConfig()
    timeline = Timeline.plan(config, now=START)
    stats = SendStats(beacon_requests=1000, rejected_requests=2, probe_results=50, lags=[0.001])
    result = judge_live(config, _watch(timeline), timeline, stats, 4, 300.0)
    assert result.false_alerts == [
        "search: Checkout with payment is failing at step payment"
    ]  # the example's title
    assert not result.passed and not result.warmup_passed
    s = result.scenario
    assert s.detected and s.detect_windows == 3
    assert s.classification_ok, s.got
    assert (s.incidents, s.notifications, s.reopened) == (1, 2, 0)
    assert s.other_journeys == {}  # the tail's login alert is not judged
    assert result.detect_s == pytest.approx(35.5)
    assert result.detect_wall_windows == pytest.approx(3.55)
    assert result.alert_after_window_s == pytest.approx(5.5)
    assert result.window_close_s_median == 6.0
    assert result.to_json()["warmup"]["false_alerts"] == 1


def test_the_live_run_is_a_labelled_row_of_the_same_table_and_json() -> None:
    config = LiveConfig()
    timeline = Timeline.plan(config, now=START)
    watch = _watch(timeline)
    watch.alerts.pop(0)  # no false alert
    result = judge_live(config, watch, timeline, SendStats(lags=[0.002]), 2, 280.0)
    report = BenchReport(BenchConfig(), None, [], 280.0, result)
    text = render_table(report)
    assert "live:payment-outage" in text and "3 PASS" in text
    assert "35.5 s after the injection" in text and "0 false alert(s) PASS" in text
    doc = report.to_json()
    assert doc["passed"] is True and doc["steady"] is None and doc["scenarios"] == []
    assert doc["live"]["scenario"]["passed"] is True
    assert doc["live"]["wall_clock"]["detect_windows"] == 3.55
