from __future__ import annotations

import json
import math
import random
from datetime import timedelta

from journeylens.domain.baseline import Baseline, BaselineParams, hour_of_week

from .detection_factories import T0


def test_no_band_until_warmed_up_then_band_around_the_mean() -> None:
    baseline = Baseline(BaselineParams(warmup_windows=10))
    for i in range(9):
        baseline.update(1000.0 + (i % 3) * 10, T0 + timedelta(minutes=i))
        assert baseline.band(T0) is None
    baseline.update(1000.0, T0)
    band = baseline.band(T0)
    assert band is not None and band.source == "ewma"
    assert 995 < band.baseline < 1015
    assert band.low < 1000 < band.high


def test_flat_series_keeps_a_minimum_relative_width() -> None:
    baseline = Baseline(BaselineParams(min_relative_width=0.2))
    for i in range(50):
        baseline.update(2000.0, T0 + timedelta(minutes=i))
    band = baseline.band(T0)
    assert band is not None
    assert band.spread == 0
    assert math.isclose(band.high, 2400.0) and math.isclose(band.low, 1600.0)
    assert not band.violated_by(2300.0, "above")
    assert band.violated_by(2500.0, "above")


def test_anomalous_windows_do_not_poison_the_baseline() -> None:
    baseline = Baseline()
    for i in range(60):
        baseline.update(1000.0 + (i % 5) * 20, T0 + timedelta(minutes=i))
    before = baseline.band(T0)
    assert before is not None
    for i in range(30):
        baseline.update(6000.0, T0 + timedelta(minutes=60 + i), anomalous=True)
    after = baseline.band(T0)
    assert after is not None
    assert after.baseline < before.baseline * 1.1
    assert after.violated_by(6000.0, "above")


def test_anomalous_values_during_warmup_are_not_learned() -> None:
    baseline = Baseline()
    for i in range(5):
        baseline.update(9000.0, T0 + timedelta(minutes=i), anomalous=True)
    assert baseline.samples == 0


def test_hour_of_week_profile_takes_over_after_two_weeks() -> None:
    """10-minute windows over three weeks; busy hours (18–22 h) are slow, the rest fast."""
    baseline = Baseline(BaselineParams(min_bucket_weeks=2, min_bucket_samples=6))
    rng = random.Random(7)
    at = T0
    for _ in range(3 * 7 * 24 * 6):
        level = 3000.0 if 18 <= at.hour < 22 else 1000.0
        baseline.update(level * math.exp(rng.gauss(0, 0.05)), at)
        at += timedelta(minutes=10)
    evening = baseline.band(T0 + timedelta(weeks=3, hours=19))
    morning = baseline.band(T0 + timedelta(weeks=3, hours=9))
    assert evening is not None and morning is not None
    assert evening.source == morning.source == "profile"
    assert 2700 < evening.baseline < 3300
    assert 900 < morning.baseline < 1100
    # a morning at the evening level is anomalous; the evening level in the evening is not
    assert morning.violated_by(3000.0, "above")
    assert not evening.violated_by(3000.0, "above")


def test_state_is_json_and_round_trips() -> None:
    baseline = Baseline()
    rng = random.Random(1)
    for i in range(300):
        baseline.update(rng.lognormvariate(7, 0.2), T0 + timedelta(minutes=i))
    state = json.loads(json.dumps(baseline.to_state()))
    restored = Baseline.from_state(state)
    for i in range(300, 400):
        value = rng.lognormvariate(7, 0.2)
        baseline.update(value, T0 + timedelta(minutes=i))
        restored.update(value, T0 + timedelta(minutes=i))
    assert restored.to_state() == baseline.to_state()
    assert restored.band(T0) == baseline.band(T0)


def test_hour_of_week_is_monday_based_utc() -> None:
    assert hour_of_week(T0) == 0
    assert hour_of_week(T0 + timedelta(days=6, hours=23, minutes=59)) == 167
