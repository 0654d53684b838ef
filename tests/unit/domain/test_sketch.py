from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylens.domain.sketch import QuantileSketch, SessionSet

ALPHA = 0.01
QS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _distributions() -> dict[str, list[float]]:
    rnd = random.Random(42)
    return {
        "lognormal_lcp": [rnd.lognormvariate(7.6, 0.6) for _ in range(20_000)],
        "exponential": [rnd.expovariate(1 / 300) for _ in range(20_000)],
        "uniform_cls": [rnd.uniform(0.0, 0.5) for _ in range(20_000)],
        "pareto_heavy_tail": [rnd.paretovariate(1.2) * 50 for _ in range(20_000)],
        "bimodal": [
            rnd.gauss(200, 20) if rnd.random() < 0.7 else rnd.gauss(4000, 300)
            for _ in range(20_000)
        ],
        "constant": [1234.5] * 1000,
    }


@pytest.mark.parametrize("name", list(_distributions()))
def test_quantiles_are_within_the_relative_accuracy(name: str) -> None:
    values = [max(v, 0.0) for v in _distributions()[name]]
    sketch = QuantileSketch(ALPHA)
    for v in values:
        sketch.add(v)
    assert sketch.count == len(values)
    for q in QS:
        exact = _exact(values, q)
        got = sketch.quantile(q)
        assert got is not None
        assert abs(got - exact) <= ALPHA * exact + 1e-9, (name, q, got, exact)


def test_zero_and_empty() -> None:
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None
    assert sketch.quantiles([0.5, 0.9]) == [None, None]
    for v in (0.0, 0.0, 0.0, 0.2):
        sketch.add(v)
    assert sketch.quantile(0.5) == 0.0
    top = sketch.quantile(1.0)
    assert top is not None and abs(top - 0.2) <= 0.2 * ALPHA


def test_weighted_add_equals_repeated_add() -> None:
    a, b = QuantileSketch(), QuantileSketch()
    a.add(250.0, weight=4)
    for _ in range(4):
        b.add(250.0)
    assert a == b and a.count == 4


def test_state_round_trips_through_json() -> None:
    sketch = QuantileSketch()
    for v in (0, 1.5, 10, 10, 2500, 1e6):
        sketch.add(v)
    state = json.loads(json.dumps(sketch.to_state()))
    again = QuantileSketch.from_state(state)
    assert again == sketch
    assert again.quantiles([0.5, 0.95]) == sketch.quantiles([0.5, 0.95])


def test_merging_different_accuracies_is_refused() -> None:
    with pytest.raises(ValueError, match="relative accuracy"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))


values = st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), max_size=60)


def _sketch(xs: list[float]) -> QuantileSketch:
    s = QuantileSketch()
    for x in xs:
        s.add(x)
    return s


@settings(max_examples=60, deadline=None)
@given(values, values, values)
def test_merge_is_associative_and_order_independent(
    a: list[float], b: list[float], c: list[float]
) -> None:
    left = _sketch(a).merge(_sketch(b)).merge(_sketch(c))
    right = _sketch(a).merge(_sketch(b).merge(_sketch(c)))
    shuffled = _sketch(c).merge(_sketch(a)).merge(_sketch(b))
    whole = _sketch(a + b + c)
    assert left == right == shuffled == whole
    assert left.quantiles(QS) == whole.quantiles(QS)


def test_session_set_is_exact_below_the_cap() -> None:
    s = SessionSet(cap=100)
    for i in range(80):
        s.add(f"s{i % 50}")
    assert s.exact and s.estimate() == 50


def test_session_set_switches_to_a_sketch_within_a_few_percent() -> None:
    s = SessionSet(cap=1000, k=1024)
    for i in range(50_000):
        s.add(f"session-{i}")
    assert not s.exact
    assert abs(s.estimate() - 50_000) / 50_000 < 0.1
    state = json.loads(json.dumps(s.to_state()))
    assert SessionSet.from_state(state).estimate() == s.estimate()


def test_session_sets_merge_across_modes_and_estimate_intersections() -> None:
    a = SessionSet(cap=500)
    b = SessionSet(cap=500)
    for i in range(20_000):
        a.ids.add(f"s{i}")
    for i in range(10_000, 30_000):
        b.add(f"s{i}")
    a.compact()
    assert abs(a.intersection(b) - 10_000) / 10_000 < 0.15
    union = a.copy().merge(b)
    assert abs(union.estimate() - 30_000) / 30_000 < 0.1
    small = SessionSet()
    small.ids.update({"x", "y"})
    other = SessionSet()
    other.ids.update({"y", "z"})
    assert small.intersection(other) == 1
    assert small.merge(other).estimate() == 3


ids = st.lists(st.integers(min_value=0, max_value=3000), max_size=400)


@settings(max_examples=40, deadline=None)
@given(ids, ids, ids)
def test_session_set_merge_is_order_independent(a: list[int], b: list[int], c: list[int]) -> None:
    def make(xs: list[int]) -> SessionSet:
        s = SessionSet(cap=300, k=64)
        for x in xs:
            s.add(f"s{x}")
        return s

    one = make(a).merge(make(b)).merge(make(c))
    two = make(c).merge(make(b).merge(make(a)))
    assert one.estimate() == two.estimate()
    assert one.to_state() == two.to_state()


def test_non_canonical_states_decode_to_the_same_sketches_and_sets() -> None:
    """The worker's changelog form (buckets and ids in their own order) is the same state."""
    sketch = QuantileSketch()
    for v in (900.0, 0, 3.5, 12_000.0, 3.5, 250.0):  # buckets added out of order
        sketch.add(v)
    state = sketch.to_state()
    # buckets in insertion order, as the pure-Python bins (and workers before Bins) write them
    loose = {**state, "i": state["i"][::-1], "c": state["c"][::-1]}
    assert loose["i"] != sorted(loose["i"])
    assert QuantileSketch.from_state(json.loads(json.dumps(loose))).to_state() == state
    exact, kmv = SessionSet(cap=100), SessionSet(cap=100, k=64)
    for i in range(60):
        exact.add(f"z{i}" if i % 2 else f"a{i}")
    for i in range(5_000):
        kmv.add(f"session-{i}")
    for s in (exact, kmv):
        again = SessionSet.from_state(json.loads(json.dumps(s.to_state(canonical=False))))
        assert again.to_state() == s.to_state()
        assert again.estimate() == s.estimate()
