"""A fast detection bench: 2 h of warm-up, then each scenario through the real pipeline.

The full benchmark (``journeylens bench detection``) warms up for 24 h; baselines here are
EWMA-only (the hour-of-week profile needs weeks either way), which 2 h of 1-min windows
already give.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from journeylens.contracts.catalog import Catalog, load_catalog
from journeylens.simulation.detection_bench import (
    BenchConfig,
    BenchReport,
    ScenarioResult,
    Simulation,
    SteadyResult,
    partitions,
    render_table,
    run_scenario,
    run_steady,
)
from journeylens.simulation.scenarios import SCENARIOS, scenario

REPO = Path(__file__).resolve().parents[3]
CONFIG = BenchConfig(warmup_hours=2.0, fault_minutes=6, recovery_minutes=0, seed=11)


@functools.cache
def catalog() -> Catalog:
    return load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml")


@functools.cache
def warm() -> tuple[Simulation, SteadyResult]:
    return run_steady(catalog(), CONFIG)


@functools.cache
def result(name: str) -> ScenarioResult:
    sim, _ = warm()
    return run_scenario(catalog(), sim, scenario(name), CONFIG)


def test_steady_noisy_traffic_raises_nothing() -> None:
    _, steady = warm()
    assert steady.incidents == 0, steady.alerts
    # the volume the detection minimums need at the busy hours simulated here
    assert min(steady.volume.mean_views().values()) >= 20


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_scenario_is_detected_within_three_windows_and_classified(name: str) -> None:
    got = result(name)
    assert got.detected and got.detect_windows is not None
    assert got.detect_windows <= 3
    assert got.scope_ok, (got.got, got.expected)
    assert got.step_ok, (got.got, got.expected)
    assert got.dependency_ok, (got.got, got.expected)
    assert got.segment_ok, (got.got, got.expected)
    assert got.incidents == 1 and got.reopened == 0


def test_warm_state_is_shared_not_recomputed() -> None:
    sim, _ = warm()
    before = {journey: state.encode() for journey, state in sim.states.items()}
    result("payment-outage")
    assert {journey: state.encode() for journey, state in sim.states.items()} == before


def test_scenario_names_are_unique_and_known() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names)) == 5
    with pytest.raises(KeyError, match="known"):
        scenario("nope")


def test_partitions_cover_every_journey_once() -> None:
    parts = partitions(catalog(), 2)
    journeys = [j for part in parts for j in part]
    assert sorted(journeys) == sorted(j.id for j in catalog().journeys)
    assert len(parts) == 2


def test_table_shows_targets_and_verdicts() -> None:
    _, steady = warm()
    report = BenchReport(CONFIG, steady, [result("login-probes-broken")], 1.0)
    text = render_table(report)
    assert "login-probes-broken" in text and "≤3" in text and "false alerts/day" in text
    assert report.to_json()["scenarios"][0]["passed"] is True
