"""The traffic model: contract-valid events, deterministic per seed, realistic behaviour."""

from __future__ import annotations

import functools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journeylens.contracts.catalog import Catalog, load_catalog
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.contracts.synthetic_results_v1 import SyntheticResult
from journeylens.simulation.traffic import (
    CDN,
    PAY,
    CdnSlowness,
    Fault,
    PaymentOutage,
    ProbeLoginBroken,
    SlowInteractionDeploy,
    TrafficModel,
    TrafficProfile,
    abandonment_penalty,
)

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC).timestamp()


@functools.cache
def catalog() -> Catalog:
    return load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml")


def run(
    minutes: int, *, seed: int = 1, faults: tuple[Fault, ...] = (), **profile: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    model = TrafficModel(catalog(), TrafficProfile(**profile), seed=seed, faults=faults)
    events: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    for i in range(minutes):
        rum, runs = model.minute(T0 + 60 * i)
        events += rum
        probes += runs
    return events, probes


def test_events_and_probe_results_validate_against_the_contracts() -> None:
    faults = (PaymentOutage(T0 + 300), ProbeLoginBroken(T0 + 300))
    events, probes = run(10, faults=faults, peak_sessions_per_minute=60)
    assert events and probes
    kinds = Counter(RumEvent.model_validate(e).kind.value for e in events)
    assert {"page_view", "soft_navigation", "error", "conversion"} <= set(kinds)
    for result in probes:
        SyntheticResult.model_validate(result)
    assert {"passed", "failed"} <= {p["status"] for p in probes}


def test_events_fall_in_the_minute_asked_for_and_ids_are_unique() -> None:
    model = TrafficModel(catalog(), TrafficProfile(peak_sessions_per_minute=60), seed=3)
    ids: set[str] = set()
    count = 0
    for i in range(5):
        start = T0 + 60 * i
        rum, probes = model.minute(start)
        for e in rum:
            at = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
            assert start <= at < start + 60 + 31  # errors/conversions trail their page
            ids.add(e["event_id"])
            count += 1
        for p in probes:
            at = datetime.fromisoformat(p["started_at"].replace("Z", "+00:00")).timestamp()
            assert start <= at < start + 60
    assert len(ids) == count


def test_same_seed_same_events_other_seed_other_events() -> None:
    a = run(3, seed=5, peak_sessions_per_minute=60)
    b = run(3, seed=5, peak_sessions_per_minute=60)
    c = run(3, seed=6, peak_sessions_per_minute=60)
    assert a == b
    assert a[0] != c[0]


def test_fork_continues_the_same_history() -> None:
    model = TrafficModel(catalog(), TrafficProfile(peak_sessions_per_minute=60), seed=2)
    for i in range(3):
        model.minute(T0 + 60 * i)
    twin = model.fork()
    assert model.minute(T0 + 180) == twin.minute(T0 + 180)


def test_daily_cycle_and_probe_schedule() -> None:
    profile = TrafficProfile()
    peak = T0 - 14 * 3600 + profile.peak_hour_utc * 3600
    assert profile.sessions_per_minute(peak) == profile.peak_sessions_per_minute
    trough = profile.sessions_per_minute(peak + 12 * 3600)
    assert abs(trough - profile.trough_ratio * profile.peak_sessions_per_minute) < 1e-6
    _, probes = run(2, peak_sessions_per_minute=20)
    per_journey = Counter((p["journey"], p["location"]) for p in probes)
    # every probed journey from both locations, at its interval (products-api every 30 s)
    assert per_journey[("products-api", "eu-central-1")] == 4
    assert per_journey[("checkout", "us-east-1")] == 2
    assert len({loc for _, loc in per_journey}) == 2


def test_segments_are_realistic() -> None:
    events, _ = run(5)
    views = [e for e in events if e["kind"] in ("page_view", "soft_navigation")]
    devices = Counter(e["context"]["device_class"] for e in views)
    countries = Counter(e["context"]["country"] for e in views)
    assert devices["mobile"] > devices["desktop"] > devices["tablet"] > 0
    assert countries.most_common(1)[0][0] == "DE"
    safari = [e for e in views if e["context"]["browser"] == "Mobile Safari"]
    assert safari and all(e["context"]["connection_type"] == "unknown" for e in safari)


def _completion(events: list[dict[str, Any]]) -> float:
    carts = {e["session_id"] for e in events if e["step"] == "cart" and e["kind"] == "page_view"}
    done = {e["session_id"] for e in events if e["kind"] == "conversion"}
    return len(done & carts) / len(carts)


def test_funnel_abandonment_rises_when_pages_are_slow() -> None:
    assert abandonment_penalty(1500) == 1.0
    assert abandonment_penalty(4000) < abandonment_penalty(3000) < 1.0
    healthy, _ = run(20, seed=4)
    slow, _ = run(20, seed=4, faults=(CdnSlowness(T0, country="DE", delay_ms=6000),))
    de_healthy = [e for e in healthy if e["context"]["country"] == "DE"]
    de_slow = [e for e in slow if e["context"]["country"] == "DE"]
    assert _completion(de_slow) < _completion(de_healthy) - 0.05


def test_payment_outage_hits_users_and_probes_at_payment() -> None:
    events, probes = run(6, faults=(PaymentOutage(T0),))
    payment_errors = [e for e in events if e.get("api_errors", [{}])[0].get("host") == PAY]
    payments = [e for e in events if e["step"] == "payment" and e["kind"] == "soft_navigation"]
    assert payment_errors and {e["step"] for e in payment_errors} == {"payment"}
    assert len(payment_errors) > 0.7 * len(payments)
    checkout = [p for p in probes if p["journey"] == "checkout"]
    assert checkout and all(p["failed_step"] == "payment" for p in checkout)
    assert all(p["steps"][-1]["status"] == "skipped" for p in checkout)


def test_cdn_slowness_touches_only_its_country() -> None:
    events, probes = run(4, faults=(CdnSlowness(T0, country="FR"),))

    def cdn_ms(country: str) -> float:
        values = [
            d["total_duration_ms"] / d["requests"]
            for e in events
            if e["context"]["country"] == country
            for d in e.get("dependencies", [])
            if d["host"] == CDN
        ]
        return sorted(values)[len(values) // 2]

    assert cdn_ms("FR") > 5 * cdn_ms("DE")
    assert all(p["status"] != "failed" for p in probes)


def test_slow_interaction_deploy_is_mobile_only() -> None:
    healthy, _ = run(8, seed=9)
    slow, _ = run(8, seed=9, faults=(SlowInteractionDeploy(T0),))

    def inp_p75(events: list[dict[str, Any]], device: str, step: str) -> float:
        values = sorted(
            e["vitals"]["inp_ms"]
            for e in events
            if e["step"] == step
            and e["context"]["device_class"] == device
            and "inp_ms" in e.get("vitals", {})
        )
        return float(values[3 * len(values) // 4])

    assert inp_p75(slow, "mobile", "search-results") > 2 * inp_p75(
        healthy, "mobile", "search-results"
    )
    desktop = inp_p75(slow, "desktop", "search-results") / inp_p75(
        healthy, "desktop", "search-results"
    )
    assert 0.7 < desktop < 1.3
    assert 0.7 < inp_p75(slow, "mobile", "product") / inp_p75(healthy, "mobile", "product") < 1.3


def test_login_broken_for_probes_only() -> None:
    events, probes = run(4, faults=(ProbeLoginBroken(T0),))
    login = [p for p in probes if p["journey"] == "login"]
    assert login and all(p["failed_step"] == "sso-authorize" for p in login)
    assert all(p["status"] == "passed" for p in probes if p["journey"] == "sso-api")
    login_views = [e for e in events if e["journey"] == "login" and e["kind"] != "error"]
    login_errors = [e for e in events if e["journey"] == "login" and e["kind"] == "error"]
    assert len(login_errors) < 0.03 * len(login_views)  # background noise only
