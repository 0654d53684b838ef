"""Which segment and dependency explain an anomaly (worst_segment, step_dependency)."""

from __future__ import annotations

from typing import Any

from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.domain.anomaly import AnomalyDetector, step_dependency
from journeylens.domain.detector import Detector

from .detection_factories import T0, WINDOW, checkout, demo_catalog, row, starts, window


def _parse(rows: list[dict[str, Any]]) -> list[JourneyAggregate]:
    return [JourneyAggregate.model_validate(r) for r in rows]


def _countries(start: Any, lcp: dict[str, float], views: dict[str, int]) -> list[dict[str, Any]]:
    return [row("cart", start, segment=("country", c), views=views[c], lcp=lcp[c]) for c in lcp]


def _run(segment_lcp: dict[str, float], step_lcp: float, warm_lcp: dict[str, float]) -> Any:
    # segment_lcp: countries, "3g" and "wifi" (connection types) during the anomaly
    """Warm up with per-country rows, then three windows of an LCP anomaly at the cart."""
    detector = AnomalyDetector(checkout())
    views = {"DE": 70, "FR": 50, "NL": 40, "3g": 40}
    countries = {k: v for k, v in warm_lcp.items() if k != "3g"}
    at = T0
    for start in starts(T0, 30):
        extra = _countries(start, countries, views)
        extra.append(row("cart", start, segment=("connection_type", "3g"), lcp=warm_lcp["3g"]))
        extra.append(row("cart", start, segment=("connection_type", "wifi"), views=120, lcp=1700.0))
        assert detector.observe(_parse(window(start, extra=extra))).findings == []
        at = start + WINDOW
    report = None
    for start in starts(at, 3):
        countries = {k: v for k, v in segment_lcp.items() if k not in ("3g", "wifi")}
        extra = _countries(start, countries, views)
        extra.append(row("cart", start, segment=("connection_type", "3g"), lcp=segment_lcp["3g"]))
        extra.append(
            row(
                "cart",
                start,
                segment=("connection_type", "wifi"),
                views=120,
                lcp=segment_lcp["wifi"],
            )
        )
        rows = window(start, step_overrides={"cart": {"lcp": step_lcp}}, extra=extra)
        report = detector.observe(_parse(rows))
    assert report is not None
    [finding] = [f for f in report.findings if f.step == "cart"]
    return finding


USUAL = {"DE": 1800.0, "FR": 1750.0, "NL": 1850.0, "3g": 3600.0}


def test_a_fault_in_one_country_is_explained_by_that_country() -> None:
    during = {"DE": 5200.0, "FR": 1800.0, "NL": 1900.0, "3g": 4300.0, "wifi": 2900.0}
    finding = _run(during, 3300.0, USUAL)
    assert (finding.segment_dimension, finding.segment_value) == ("country", "DE")


def test_an_always_slow_segment_is_not_blamed_for_being_slow() -> None:
    # every page ~1.8x slower: 3G is far above the step's baseline, but only as usual for it
    during = {"DE": 3300.0, "FR": 3200.0, "NL": 3400.0, "3g": 6500.0, "wifi": 3100.0}
    finding = _run(during, 3300.0, USUAL)
    assert finding.segment_dimension is None


def test_a_fault_hitting_everyone_names_no_segment() -> None:
    detector = AnomalyDetector(checkout())
    at = T0
    for start in starts(T0, 30):
        assert detector.observe(_parse(window(start))).findings == []
        at = start + WINDOW
    report = None
    rates = {"DE": 0.93, "FR": 0.85, "NL": 0.88, "GB": 0.9}
    for start in starts(at, 3):
        extra = [
            row("payment", start, segment=("country", c), views=25, error_rate=r)
            for c, r in rates.items()
        ]
        rows = window(start, step_overrides={"payment": {"error_rate": 0.88}}, extra=extra)
        report = detector.observe(_parse(rows))
    assert report is not None
    finding = next(f for f in report.findings if f.metric == "rum.error_rate")
    assert finding.segment_dimension is None


def test_a_failing_probe_step_suspects_its_only_dependency() -> None:
    journey = checkout()
    assert step_dependency(journey, "payment") == "payment"
    assert step_dependency(journey, "checkout-page") is None
    assert step_dependency(journey, "unknown") is None


def test_segment_levels_survive_the_state_round_trip() -> None:
    detector = Detector(demo_catalog())
    for start in starts(T0, 12):
        extra = [row("cart", start, segment=("country", "DE"), views=60, lcp=1900.0)]
        detector.observe(window(start, extra=extra))
    state = detector.state_for("checkout")
    assert any(
        key.startswith("cart\trum.lcp_ms.p75\tcountry\tDE") for key in state["anomaly"]["_segments"]
    )
    fresh = Detector(demo_catalog())
    fresh.load_state("checkout", state)
    assert fresh.state_for("checkout") == state


def test_a_journey_level_probe_finding_points_at_the_failing_step() -> None:
    detector = AnomalyDetector(checkout())
    at = T0
    for start in starts(T0, 30):
        detector.observe(_parse(window(start)))
        at = start + WINDOW
    # a transient run failure (journey level only) just before probes start failing at payment
    detector.observe(_parse(window(at, step_overrides={"_journey": {"failures": 1}})))
    report = None
    for start in starts(at + WINDOW, 2):
        failing = {"_journey": {"failures": 1}, "payment": {"failures": 1}}
        report = detector.observe(_parse(window(start, step_overrides=failing)))
    assert report is not None
    [finding] = report.findings
    assert finding.step == "_journey" and finding.violating_steps == ("payment",)
    assert finding.dependency == "payment"


def test_a_dependency_several_times_slower_than_usual_is_suspected() -> None:
    from journeylens.contracts.experience_aggregates_v1 import DependencyStats
    from journeylens.domain.anomaly import METRICS_BY_NAME, AnomalyParams, suspected_dependency

    def dep(host: str, provider: str | None, p75: float) -> DependencyStats:
        return DependencyStats(
            host=host, provider=provider, requests=100, failures=0, failure_rate=0.0, p75_ms=p75
        )

    deps = [dep("cdn.localhost", "cdn", 560.0), dep("shop.localhost", None, 300.0)]
    lcp = METRICS_BY_NAME["rum.lcp_ms.p75"]
    params = AnomalyParams()
    assert suspected_dependency(deps, lcp, params) is None  # below the absolute floor
    usual = {"cdn.localhost": 110.0, "shop.localhost": 290.0}
    assert suspected_dependency(deps, lcp, params, usual) == "cdn"
    # a small absolute change is not a slowdown, whatever the ratio
    assert (
        suspected_dependency(
            [dep("cdn.localhost", "cdn", 200.0)], lcp, params, {"cdn.localhost": 20.0}
        )
        is None
    )
