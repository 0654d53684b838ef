from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.contracts.experience_anomalies_v1 import Anomaly
from journeylens.domain.anomaly import (
    AnomalyDetector,
    AnomalyParams,
    Finding,
    poisson_upper_count,
)
from journeylens.domain.detector import Detector

from .detection_factories import (
    T0,
    WINDOW,
    checkout,
    demo_catalog,
    noisy_day_values,
    row,
    starts,
    window,
)


def _parse(rows: list[dict[str, Any]]) -> list[JourneyAggregate]:
    return [JourneyAggregate.model_validate(r) for r in rows]


def _warm(detector: AnomalyDetector, count: int = 30, first: datetime = T0) -> datetime:
    for start in starts(first, count):
        assert detector.observe(_parse(window(start))).findings == []
    return first + count * WINDOW


def test_factory_rows_are_valid_contract_messages() -> None:
    for r in window(T0, extra=[row("payment", T0, segment=("country", "FR"))]):
        JourneyAggregate.model_validate(r)


def test_lcp_step_change_is_detected_on_the_third_window_as_rum_only() -> None:
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    found: list[list[Finding]] = []
    for start in starts(at, 3):
        slow = window(start, step_overrides={"payment": {"lcp": 5200.0}})
        found.append(detector.observe(_parse(slow)).findings)
    assert found[0] == [] and found[1] == []
    [finding] = found[2]
    anomaly = Anomaly.model_validate(finding.anomaly)
    assert anomaly.metric == "rum.lcp_ms.p75"
    assert anomaly.step == "payment"
    assert anomaly.scope == "rum_only"
    assert anomaly.value == 5200.0 and anomaly.threshold == 2500
    assert anomaly.baseline is not None and abs(anomaly.baseline - 1800.0) < 20
    assert anomaly.band_high is not None and anomaly.band_high < 5200
    assert (anomaly.violating_windows, anomaly.of_windows) == (3, 5)
    assert anomaly.anomaly_id == f"checkout|payment|rum.lcp_ms.p75|{(at + 2 * WINDOW).isoformat()}"
    assert anomaly.detected_at == at + 3 * WINDOW


def test_beyond_band_but_within_threshold_is_not_an_anomaly() -> None:
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    for start in starts(at, 6):
        doubled = window(start, step_overrides={"cart": {"lcp": 2400.0, "ttfb": 790.0}})
        assert detector.observe(_parse(doubled)).findings == []


def test_low_traffic_window_cannot_alarm() -> None:
    detector = AnomalyDetector(checkout(), AnomalyParams(min_sampled_views=20))
    at = _warm(detector)
    for start in starts(at, 6):
        quiet = window(start, views=12, lcp=9000.0, error_rate=0.5)
        report = detector.observe(_parse(quiet))
        assert [f for f in report.findings if f.side == "rum"] == []


def test_confirmed_when_probes_fail_the_same_step() -> None:
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    broken = {
        "error_rate": 0.3,
        "failures": 1,
        "failed_assertions": {"$.status != authorized": 1},
    }
    report = None
    for start in starts(at, 3):
        report = detector.observe(_parse(window(start, step_overrides={"payment": broken})))
    assert report is not None
    by_metric = {(f.step, f.metric): f for f in report.findings}
    assert by_metric[("payment", "rum.error_rate")].scope == "confirmed"
    probe = by_metric[("payment", "synthetic.availability")]
    assert probe.scope == "confirmed"
    assert probe.failing_locations == ("local-1",)
    assert probe.failed_assertions == ("$.status != authorized",)


def test_synthetic_only_when_real_users_are_fine() -> None:
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    report = None
    for start in starts(at, 3):
        rows = window(start, step_overrides={"confirmation": {"failures": 1}})
        report = detector.observe(_parse(rows))
    assert report is not None
    [finding] = [f for f in report.findings if f.step == "confirmation"]
    assert finding.metric == "synthetic.availability"
    assert finding.scope == "synthetic_only"


def test_rum_only_is_explained_by_the_worst_segment_and_dependency() -> None:
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    report = None
    deps = [
        {
            "host": "pay.localhost",
            "provider": "payment",
            "requests": 100,
            "failures": 1,
            "failure_rate": 0.01,
            "p75_ms": 2400.0,
        },
        {
            "host": "cdn.localhost",
            "provider": "cdn",
            "requests": 300,
            "failures": 0,
            "failure_rate": 0.0,
            "p75_ms": 90.0,
        },
    ]
    for start in starts(at, 3):
        extra = [
            row("payment", start, segment=("country", "FR"), views=60, lcp=8000.0),
            row("payment", start, segment=("country", "DE"), views=80, lcp=3000.0),
            row("payment", start, segment=("country", "other"), views=5, lcp=20000.0),
            row("payment", start, segment=("device_class", "mobile"), views=90, lcp=4000.0),
        ]
        rows = window(
            start,
            step_overrides={"payment": {"lcp": 4200.0, "dependencies": deps}},
            extra=extra,
        )
        report = detector.observe(_parse(rows))
    assert report is not None
    [finding] = report.findings
    assert finding.scope == "rum_only"
    assert (finding.segment_dimension, finding.segment_value) == ("country", "FR")
    assert finding.dependency == "payment"  # slowest dependency of a latency anomaly
    assert finding.anomaly["segment_value"] == "FR"


def test_synthetic_needs_consecutive_failures_not_just_three_of_five() -> None:
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    for i, start in enumerate(starts(at, 10)):
        failing = {"cart": {"failures": 1}} if i % 2 == 0 else {}
        assert detector.observe(_parse(window(start, step_overrides=failing))).findings == []


def test_synthetic_needs_the_minimum_failing_locations() -> None:
    two = [
        {"location": "eu-1", "runs": 1, "failures": 1, "availability": 0.0},
        {"location": "us-1", "runs": 1, "failures": 0, "availability": 1.0},
    ]
    strict = AnomalyDetector(checkout(), AnomalyParams(min_failing_locations=2))
    lax = AnomalyDetector(checkout(), AnomalyParams(min_failing_locations=1))
    for detector in (strict, lax):
        _warm(detector)
    found = {"strict": 0, "lax": 0}
    for start in starts(T0 + 30 * WINDOW, 5):
        rows = window(start, step_overrides={"cart": {"runs": 2, "failures": 1, "locations": two}})
        found["strict"] += len(strict.observe(_parse(rows)).findings)
        found["lax"] += len(lax.observe(_parse(rows)).findings)
    assert found == {"strict": 0, "lax": 3}


def test_synthetic_minimum_failure_duration() -> None:
    detector = AnomalyDetector(checkout(), AnomalyParams(min_failure_duration_s=300))
    at = _warm(detector)
    first = None
    for i, start in enumerate(starts(at, 8)):
        rows = window(start, step_overrides={"cart": {"failures": 1}})
        if detector.observe(_parse(rows)).findings and first is None:
            first = i
    assert first == 4  # the 5th failing window ends 5 minutes after the failure began


def test_warmup_learns_a_chronic_level_instead_of_alarming_forever() -> None:
    """Mobile-heavy sites often have p75 LCP above 2.5 s: that is their normal, not an incident."""
    detector = AnomalyDetector(checkout())
    hits = [len(detector.observe(_parse(window(s, lcp=3200.0))).findings) for s in starts(T0, 40)]
    assert sum(hits) == 0
    eager = AnomalyDetector(checkout(), AnomalyParams(alarm_during_warmup=True))
    hits = [len(eager.observe(_parse(window(s, lcp=3200.0))).findings) for s in starts(T0, 40)]
    assert hits[2] > 0  # threshold alone decides while warming up
    assert sum(hits[15:]) == 0  # then the baseline has learnt the chronic level


def test_steady_noisy_traffic_for_two_days_raises_nothing() -> None:
    """2 days of 1-minute windows, daily cycle, lognormal noise, binomial errors."""
    rng = random.Random(20250303)
    detector = Detector(demo_catalog())
    anomalies: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    journey = checkout()
    for start in starts(T0, 2 * 24 * 60):
        overrides = {}
        for step in [*(s.id for s in journey.steps), "_journey"]:
            views = max(40, int(noisy_day_values(rng, start, 200, 0.1)))
            errors = sum(rng.random() < 0.005 for _ in range(views))
            overrides[step] = {
                "views": views,
                "lcp": noisy_day_values(rng, start, 1500, 0.12),
                "inp": noisy_day_values(rng, start, 110, 0.12),
                "ttfb": noisy_day_values(rng, start, 350, 0.12),
                "cls": 0.05 * rng.lognormvariate(0, 0.2),
                "error_rate": errors / views,
                "apdex": min(1.0, 0.93 + rng.gauss(0, 0.02)),
                "failures": int(rng.random() < 0.004),
            }
        out = detector.observe(window(start, step_overrides=overrides))
        anomalies += out.anomalies
        alerts += out.alerts
    assert anomalies == [], anomalies
    assert alerts == [], [
        (
            a["type"],
            a["time"],
            [s["metric"] + ":" + str(s.get("detail")) for s in a["data"]["signals"]],
        )
        for a in alerts
    ]


def test_same_input_twice_same_output() -> None:
    def run() -> list[dict[str, Any]]:
        detector = AnomalyDetector(checkout())
        out: list[dict[str, Any]] = []
        for i, start in enumerate(starts(T0, 60)):
            bad = {"payment": {"lcp": 6000.0, "failures": 1}} if 35 <= i < 45 else {}
            out += [
                f.anomaly
                for f in detector.observe(_parse(window(start, step_overrides=bad))).findings
            ]
        return out

    first, second = run(), run()
    assert first and first == second


def test_state_round_trip_mid_stream_gives_the_same_anomalies() -> None:
    def feed(detector: AnomalyDetector, begin: int, end: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(begin, end):
            start = T0 + i * WINDOW
            bad = {"payment": {"lcp": 6000.0}} if 30 <= i < 40 else {}
            out += [
                f.anomaly
                for f in detector.observe(_parse(window(start, step_overrides=bad))).findings
            ]
        return out

    continuous = AnomalyDetector(checkout())
    expected = feed(continuous, 0, 50)
    first = AnomalyDetector(checkout())
    got = feed(first, 0, 33)
    restored = AnomalyDetector(checkout())
    restored.load_state(json.loads(json.dumps(first.to_state())))
    got += feed(restored, 33, 50)
    assert got == expected


def test_poisson_bound_for_error_counts() -> None:
    assert poisson_upper_count(1.5, 1e-3) == 7  # P(X >= 7 | 1.5) ≈ 8e-4
    assert poisson_upper_count(0.0001, 1e-3) == 1
    assert 1090 < poisson_upper_count(1000.0, 1e-3) < 1110


def test_a_few_errors_at_low_volume_are_noise_not_an_incident() -> None:
    """Base rate 0.5 %: 6 errors in 300 views (2 %, at the threshold) three times is not enough."""
    detector = AnomalyDetector(checkout())
    at = _warm(detector)
    for start in starts(at, 5):
        rows = window(start, views=300, error_rate=6 / 300)
        assert detector.observe(_parse(rows)).findings == []
    for start in starts(at + 5 * WINDOW, 3):
        report = detector.observe(_parse(window(start, views=300, error_rate=0.08)))
    assert {f.metric for f in report.findings} == {"rum.error_rate"}
