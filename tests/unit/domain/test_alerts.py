from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import yaml

from journeylens.contracts.catalog import Catalog, parse_catalog
from journeylens.contracts.experience_aggregates_v1 import Scope
from journeylens.contracts.experience_alerts_v1 import AlertEvent
from journeylens.domain.alerts import AlertPolicy, WindowSignals
from journeylens.domain.anomaly import Finding
from journeylens.domain.burn_rate import BurnAlert
from journeylens.domain.clock import FakeClock
from journeylens.domain.detector import Detector

from .detection_factories import REPO, T0, WINDOW, checkout, demo_catalog, starts, window

SLOW_PAYMENT = {"payment": {"lcp": 5200.0}}
BROKEN_PAYMENT = {"payment": {"lcp": 5200.0, "error_rate": 0.4, "failures": 1}}


def _feed(
    detector: Detector, pattern: list[dict[str, Any]], first: datetime = T0
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for start, overrides in zip(starts(first, len(pattern)), pattern, strict=True):
        events += detector.observe(window(start, step_overrides=overrides)).alerts
    return events


def _events(raw: list[dict[str, Any]]) -> list[AlertEvent]:
    return [AlertEvent.model_validate(e) for e in raw]


def test_step_change_fires_one_incident_within_three_windows() -> None:
    raw = _feed(Detector(demo_catalog()), [{}] * 30 + [SLOW_PAYMENT] * 5)
    [event] = _events(raw)
    assert event.type == "io.journeylens.alert.firing"
    assert event.subject == "checkout"
    assert event.time == T0 + 33 * WINDOW  # end of the third slow window
    data = event.data
    assert data.status == "firing" and data.scope == Scope.RUM_ONLY
    assert data.severity == "ticket"  # critical journey, not confirmed by probes
    assert data.started_at == T0 + 32 * WINDOW
    assert data.evidence.suspected_step == "payment"
    assert [s.metric for s in data.signals] == ["rum.lcp_ms.p75"]
    assert data.labels["journey"] == "checkout"
    assert data.incident_id == "checkout:20250303T003200Z"


def test_resolves_only_after_three_healthy_windows() -> None:
    raw = _feed(Detector(demo_catalog()), [{}] * 30 + [SLOW_PAYMENT] * 6 + [{}] * 5)
    firing, resolved = _events(raw)
    assert resolved.type == "io.journeylens.alert.resolved"
    assert resolved.time == T0 + 39 * WINDOW  # third healthy window (36, 37, 38) ends at 39
    assert resolved.data.resolved_at == resolved.time
    assert resolved.data.fingerprint == firing.data.fingerprint
    assert resolved.data.incident_id == firing.data.incident_id
    assert resolved.id != firing.id


def test_flapping_series_is_one_incident() -> None:
    pattern: list[dict[str, Any]] = [{}] * 30
    for _ in range(12):
        pattern += [SLOW_PAYMENT] * 4 + [{}] * 4
    events = _events(_feed(Detector(demo_catalog()), pattern))
    assert len({e.data.incident_id for e in events}) == 1
    assert len({e.data.fingerprint for e in events}) == 1
    assert events[0].type == "io.journeylens.alert.firing"


def test_fast_flapping_never_resolves_in_between() -> None:
    pattern: list[dict[str, Any]] = [{}] * 30 + [SLOW_PAYMENT, {}] * 40
    events = _events(_feed(Detector(demo_catalog()), pattern))
    assert [e.type for e in events] == ["io.journeylens.alert.firing"]


def test_refiring_after_the_cooldown_is_a_new_incident() -> None:
    pattern: list[dict[str, Any]] = [{}] * 30 + [SLOW_PAYMENT] * 4 + [{}] * 40 + [SLOW_PAYMENT] * 4
    events = _events(_feed(Detector(demo_catalog()), pattern))
    assert [e.type.rsplit(".", 1)[1] for e in events] == ["firing", "resolved", "firing"]
    assert events[0].data.incident_id != events[2].data.incident_id


def _catalog_with_maintenance(journey: str, start: datetime, end: datetime) -> Catalog:
    raw = yaml.safe_load((REPO / "infra/catalog/demo-shop.yaml").read_text())
    raw["maintenance"] = [{"journey": journey, "start": start.isoformat(), "end": end.isoformat()}]
    return parse_catalog(raw)


def test_maintenance_window_suppresses() -> None:
    for target in ("checkout", "*"):
        catalog = _catalog_with_maintenance(target, T0 + 25 * WINDOW, T0 + 60 * WINDOW)
        assert _feed(Detector(catalog), [{}] * 30 + [SLOW_PAYMENT] * 20 + [{}] * 20) == []
    other = _catalog_with_maintenance("login", T0 + 25 * WINDOW, T0 + 60 * WINDOW)
    assert len(_feed(Detector(other), [{}] * 30 + [SLOW_PAYMENT] * 20)) == 1


def test_problem_outlasting_maintenance_fires_when_it_ends() -> None:
    catalog = _catalog_with_maintenance("checkout", T0 + 25 * WINDOW, T0 + 40 * WINDOW)
    [event] = _events(_feed(Detector(catalog), [{}] * 30 + [SLOW_PAYMENT] * 20))
    assert event.time == T0 + 41 * WINDOW


def test_escalation_when_probes_confirm_is_an_update_of_the_same_incident() -> None:
    pattern: list[dict[str, Any]] = [{}] * 30 + [SLOW_PAYMENT] * 3 + [BROKEN_PAYMENT] * 4
    first, update, joined = _events(_feed(Detector(demo_catalog()), pattern))
    assert (first.data.severity, first.data.scope) == ("ticket", "rum_only")
    # the probes fail the same step in the same window: confirmed, critical journey → page
    assert (update.data.severity, update.data.scope) == ("page", "confirmed")
    assert update.type == "io.journeylens.alert.firing"
    assert update.data.fingerprint == first.data.fingerprint == joined.data.fingerprint
    # three windows later the probe failure is itself an anomaly: a new kind of signal joins
    assert {s.kind for s in joined.data.signals} == {"anomaly", "synthetic_failure"}
    assert joined.data.evidence.failing_locations == ["local-1"]
    assert joined.time - update.time == 2 * WINDOW


def test_same_input_twice_and_state_round_trip_give_the_same_events() -> None:
    pattern: list[dict[str, Any]] = [{}] * 30 + [BROKEN_PAYMENT] * 6 + [{}] * 6
    once = _feed(Detector(demo_catalog()), pattern)
    twice = _feed(Detector(demo_catalog()), pattern)
    assert once and once == twice

    first = Detector(demo_catalog())
    got = _feed(first, pattern[:34])
    state = json.loads(json.dumps(first.state_for("checkout")))
    second = Detector(demo_catalog())
    second.load_state("checkout", state)
    got += _feed(second, pattern[34:], first=T0 + 34 * WINDOW)
    assert got == once
    # a replayed window (at-least-once delivery) changes nothing
    assert second.observe(window(T0 + 35 * WINDOW, step_overrides=BROKEN_PAYMENT)).alerts == []


def _finding(start: datetime, scope: Scope = Scope.RUM_ONLY) -> Finding:
    return Finding(
        anomaly={},
        side="rum",
        step="payment",
        metric="rum.lcp_ms.p75",
        value=5000.0,
        threshold=2500.0,
        baseline=1800.0,
        scope=scope,
        window_start=start,
    )


def _burn(start: datetime) -> BurnAlert:
    return BurnAlert(
        "checkout-availability", "availability", "1h/5m", "page", 14.4, 20.0, 30.0, 3600, 300, start
    )


def test_policy_with_a_fake_clock_burn_rate_pages_and_hysteresis() -> None:
    clock = FakeClock(T0)
    policy = AlertPolicy(checkout(), clock)
    events: list[dict[str, Any]] = []
    for i in range(8):
        start = T0 + i * WINDOW
        clock.set(start + WINDOW)
        burns = [_burn(start)] if i < 2 else []
        events += policy.observe(WindowSignals(start, start + WINDOW, burns=burns))
    fired, resolved = _events(events)
    assert fired.data.severity == "page" and fired.data.scope == "synthetic_only"
    assert fired.data.signals[0].kind == "burn_rate"
    assert fired.time == T0 + WINDOW
    assert resolved.time == T0 + 5 * WINDOW  # healthy windows 2, 3, 4
    assert policy.incident is not None and policy.incident.status == "resolved"
    clock.set(T0 + timedelta(hours=2))
    start = T0 + timedelta(hours=2)
    assert policy.observe(WindowSignals(start, start + WINDOW)) == []
    assert policy.incident is None  # forgotten after the cool-down


def test_medium_journey_anomaly_is_a_warning() -> None:
    journey = checkout().model_copy(update={"criticality": "medium"})
    policy = AlertPolicy(journey, FakeClock(T0 + WINDOW))
    [event] = _events(policy.observe(WindowSignals(T0, T0 + WINDOW, findings=[_finding(T0)])))
    assert event.data.severity == "warning"
