"""The compiled sketch parts behave as the pure-Python ones they replace: ``Bins`` as the
``PyBins`` dict, the session hashes and KMV union as ``py_hash63`` and ``py_kmv_union``."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylens.domain import sketch as sketch_module
from journeylens.domain.sketch import (
    Bins,
    PyBins,
    QuantileSketch,
    hash63_all,
    kmv_union,
    py_hash63,
    py_hash63_all,
    py_kmv_union,
    stable_hash63,
)

INDEXES = st.integers(-3000, 3000)
QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
COUNTS = st.integers(0, 10**12)
PAIRS = st.lists(st.tuples(INDEXES, COUNTS), max_size=40)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), INDEXES, COUNTS),
        st.tuples(st.just("set"), INDEXES, COUNTS),
        st.tuples(st.just("merge"), PAIRS, st.booleans()),
        st.tuples(st.just("delete"), INDEXES, st.none()),
    ),
    max_size=30,
)


def test_the_compiled_bins_are_built_by_the_install() -> None:
    # the worker's scan writes them (the pure-Python sketch works without, slower); CI must build
    assert Bins is not PyBins
    assert kmv_union is not py_kmv_union and hash63_all is not py_hash63_all


def _apply(bins: Any, kind: str, a: Any, b: Any) -> None:
    if kind == "add":
        bins.add(a, b)
    elif kind == "set":
        bins[a] = b
    elif kind == "merge":
        bins.merge(type(bins)(a) if b else dict(a))
    elif a in bins:
        del bins[a]


@settings(max_examples=300, deadline=None)
@given(PAIRS, OPERATIONS)
def test_bins_follow_the_dict_they_replace(start: list[tuple[int, int]], ops: list[Any]) -> None:
    compiled, plain = Bins(start), PyBins(start)
    for kind, a, b in ops:
        _apply(compiled, kind, a, b)
        _apply(plain, kind, a, b)
    assert dict(compiled.items()) == dict(plain)
    assert list(compiled) == sorted(plain)  # ascending, always
    assert compiled.sorted_lists() == plain.sorted_lists()
    assert compiled.total() == plain.total()
    for zero in (0, 3, compiled.total()):
        assert compiled.buckets_at(QUANTILES, zero) == plain.buckets_at(QUANTILES, zero)
    assert len(compiled) == len(plain)
    assert compiled == Bins(plain)
    for index in {i for i, _ in start} | {-5000, 0, 5000}:
        assert (index in compiled) == (index in plain)
        assert compiled.get(index) == plain.get(index)
        assert compiled.get(index, -1) == plain.get(index, -1)


@settings(max_examples=200, deadline=None)
@given(PAIRS, PAIRS)
def test_merge_adds_counts_in_any_order(
    one: list[tuple[int, int]], two: list[tuple[int, int]]
) -> None:
    left, right = Bins(one), Bins(two)
    merged = left.copy()
    merged.merge(right)
    other_way = right.copy()
    other_way.merge(left)
    assert merged == other_way
    expected = PyBins(one)
    expected.merge(PyBins(two))
    assert dict(merged.items()) == expected
    assert left == Bins(one)  # merge leaves its argument alone; the copy was not shared


def test_from_lists_reads_written_states_in_any_order() -> None:
    assert Bins.from_lists([1, 5, 9], [2, 3, 4]).items() == [(1, 2), (5, 3), (9, 4)]
    # unsorted, as PyBins writes its non-canonical state; a later index replaces (as dict())
    assert Bins.from_lists([9, 1, 5, 1], [4, 2, 3, 7]).items() == [(1, 7), (5, 3), (9, 4)]
    with pytest.raises(ValueError, match="differ in length"):
        Bins.from_lists([1, 2], [1])
    with pytest.raises(TypeError, match="must be an int"):
        Bins.from_lists([1.5], [1])


def test_equality_ignores_zero_counts_and_errors_name_the_problem() -> None:
    assert Bins({1: 2, 3: 0}) == Bins({1: 2})
    assert Bins({1: 2}) != Bins({1: 3})
    assert PyBins({1: 2, 3: 0}) == PyBins({1: 2})
    with pytest.raises(KeyError):
        Bins()[4]
    with pytest.raises(TypeError, match="bucket index must be an int"):
        Bins().add("4")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unhashable"):
        hash(Bins())


def test_bins_copy_and_pickle() -> None:
    bins = Bins({-2: 1, 7: 40})
    for again in (
        bins.copy(),
        copy.copy(bins),
        copy.deepcopy(bins),
        pickle.loads(pickle.dumps(bins)),
    ):
        assert again == bins and again is not bins
        again.add(100)
        assert 100 not in bins
    assert repr(bins) == "Bins([(-2, 1), (7, 40)])"


def _sketch_figures(bins_type: type, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setattr(sketch_module, "Bins", bins_type)
    one, two = QuantileSketch(), QuantileSketch()
    for i in range(500):
        (one if i % 3 else two).add(1.7 ** (i % 41) + i * 0.01)
    one.add(0.0)
    assert type(one.bins) is bins_type
    merged = one.copy().merge(two)
    state = merged.to_state()
    assert QuantileSketch.from_state(state) == merged
    loose = merged.to_state(canonical=False)
    assert QuantileSketch.from_state(loose) == merged
    return merged.count, state, merged.quantiles([0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])


def test_sketches_on_either_bins_give_the_same_state(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = _sketch_figures(Bins, monkeypatch)
    plain = _sketch_figures(PyBins, monkeypatch)
    assert compiled == plain
    count, state, quantiles = compiled
    assert count == 501
    assert state["z"] == 1 and state["i"] == sorted(state["i"]) and sum(state["c"]) == 500
    assert quantiles[0] == 0.0 and quantiles == sorted(quantiles)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=20))
def test_compiled_session_hashes_are_the_blake2b_ones(ids: list[str]) -> None:
    # the KMV sketches of compiled and pure-Python workers (and states already written) agree
    assert hash63_all(ids) == py_hash63_all(ids) == [stable_hash63(i) for i in ids]
    assert all(0 <= h < 2**63 for h in hash63_all(ids))


def test_session_hash_of_known_ids() -> None:
    # BLAKE2b-64 of the empty string is e4a6a0577479b2b4 (RFC 7693's parameters, no key)
    assert stable_hash63("") == 0xE4A6A0577479B2B4 >> 1
    assert stable_hash63("s1") == py_hash63("s1")
    long_id = "é" * 200  # 400 bytes: four blocks, the last one partial
    assert stable_hash63(long_id) == py_hash63(long_id)
    assert len({stable_hash63(f"s{i}") for i in range(10_000)}) == 10_000
    with pytest.raises(TypeError, match="session id must be a str"):
        hash63_all([1])  # type: ignore[list-item]


HASHES = st.lists(st.integers(0, 2**63 - 1), max_size=60)


@settings(max_examples=300, deadline=None)
@given(HASHES, HASHES, st.integers(0, 50))
def test_kmv_union_keeps_the_k_smallest_distinct(
    current: list[int], new: list[int], k: int
) -> None:
    sketch = sorted(set(current))[:k]
    assert kmv_union(sketch, new, k) == py_kmv_union(sketch, new, k)
    assert kmv_union(sketch, new, k) == sorted(set(sketch) | set(new))[:k]


def test_kmv_union_refuses_a_sketch_out_of_order() -> None:
    with pytest.raises(ValueError, match="must ascend"):
        kmv_union([5, 3], [1], 4)
    with pytest.raises(ValueError, match="must ascend"):
        kmv_union([3, 3], [1], 4)
