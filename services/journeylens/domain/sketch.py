"""Mergeable sketches with compact, JSON-able state.

`QuantileSketch` is a DDSketch (Masson et al., VLDB 2019; the same log-bucket mapping as
Datadog's ``ddsketch``): values fall into buckets ``(gamma^(i-1), gamma^i]`` with
``gamma = (1 + a) / (1 - a)``, so every quantile it returns is within relative error ``a`` of the
exact (lower) quantile. Counts per bucket add up, so merging is exact, associative and
commutative. It is written here rather than wrapping ``ddsketch`` because the hot path adds one
value at a time into plain dicts and the state must serialise to a small JSON object.

`SessionSet` counts distinct session ids: exact up to a cap, then a K-Minimum-Values sketch over
a stable 64-bit hash (the same on every worker), so it merges across batches and processes.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

DEFAULT_RELATIVE_ACCURACY = 0.01
MIN_INDEXABLE = 1e-9
"""Values at or below this (and zero) go to the zero bucket."""


class PyBins(dict[int, int]):
    """Bucket index -> count: the sketch's buckets where the compiled ``Bins`` is not built.

    ``Bins`` (``journeylens.domain._rumscan``) is the same mapping kept as one sorted array, so
    that the worker's scan writes it without making Python ints and a merge is one linear pass.
    Both have the methods below; they differ only in iteration order (``Bins`` ascends)."""

    def add(self, index: int, count: int = 1) -> None:
        self[index] = self.get(index, 0) + count

    def merge(self, other: Mapping[int, int]) -> None:
        if not self:
            self.update(other)
            return
        get = self.get
        for i, n in other.items():
            self[i] = get(i, 0) + n

    def total(self) -> int:
        return sum(self.values())

    def buckets_at(self, qs: Sequence[float], zero: int = 0) -> list[int | None]:
        """For each q, the index of the bucket holding the value at rank ``q * (count - 1)``
        (lower quantile), counting ``zero`` values below every bucket; None for a zero value."""
        keys, counts = self.sorted_lists()
        # values up to and including each bucket (the zero bucket first): exact ints
        cumulative = list(accumulate(counts, initial=zero))
        del cumulative[0]
        total = cumulative[-1] if cumulative else zero
        out: list[int | None] = []
        for q in qs:
            rank = q * (total - 1)
            if zero > rank:
                out.append(None)
                continue
            i = bisect_right(cumulative, rank)  # the first bucket whose values pass the rank
            out.append(keys[i] if i < len(keys) else None)
        return out

    def sorted_lists(self) -> tuple[list[int], list[int]]:
        keys = sorted(self)
        return keys, list(map(self.__getitem__, keys))

    def copy(self) -> PyBins:
        return PyBins(self)

    @classmethod
    def from_lists(cls, indexes: Iterable[int], counts: Iterable[int]) -> PyBins:
        return cls(zip(indexes, counts, strict=True))

    def __eq__(self, other: object) -> bool:
        """Equal when the same indexes have the same non-zero counts."""
        if not isinstance(other, PyBins | Bins):
            return NotImplemented
        return {i: n for i, n in self.items() if n} == {i: n for i, n in other.items() if n}

    __hash__ = None


try:
    from journeylens.domain._rumscan import Bins as Bins
except ImportError:  # not built: no C compiler where it was installed
    Bins = PyBins  # type: ignore[assignment,misc]


_MAPPINGS: dict[float, tuple[float, float]] = {}
"""relative accuracy → (gamma, 1 / ln gamma)."""


class QuantileSketch:
    """A DDSketch over non-negative values. Not thread-safe; cheap to create."""

    __slots__ = ("bins", "zero", "_inv_log_gamma", "_gamma", "relative_accuracy")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        mapping = _MAPPINGS.get(relative_accuracy)
        if mapping is None:  # made once per accuracy: a batch makes sketches by the thousand
            if not 0 < relative_accuracy < 1:
                raise ValueError("relative_accuracy must be in (0, 1)")
            gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
            mapping = _MAPPINGS[relative_accuracy] = (gamma, 1.0 / math.log(gamma))
        self.relative_accuracy = relative_accuracy
        self._gamma, self._inv_log_gamma = mapping
        self.bins: Bins = Bins()
        self.zero = 0

    def add(self, value: float, weight: int = 1) -> None:
        """Add ``value`` ``weight`` times. Negative values count as zero (none are expected)."""
        if value > MIN_INDEXABLE:
            self.bins.add(math.ceil(math.log(value) * self._inv_log_gamma), weight)
        else:
            self.zero += weight

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Add ``other``'s counts into this sketch (in place) and return it."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("cannot merge sketches of different relative accuracy")
        self.bins.merge(other.bins)
        self.zero += other.zero
        return self

    @property
    def count(self) -> int:
        return self.zero + self.bins.total()

    def quantile(self, q: float) -> float | None:
        """The value at rank ``q * (count - 1)`` (lower quantile), or None when empty."""
        if not 0 <= q <= 1:
            raise ValueError("q must be in [0, 1]")
        return self.quantiles([q])[0]

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles over one pass of the buckets (the same values as `quantile` one
        at a time)."""
        wanted = list(qs)
        if not self.bins:
            return [None if not self.zero else 0.0 for _ in wanted]
        value = self._value
        return [0.0 if i is None else value(i) for i in self.bins.buckets_at(wanted, self.zero)]

    def _value(self, index: int) -> float:
        return 2.0 * self._gamma**index / (self._gamma + 1.0)

    def copy(self) -> QuantileSketch:
        other = QuantileSketch(self.relative_accuracy)
        other.bins = self.bins.copy()
        other.zero = self.zero
        return other

    def to_state(self, canonical: bool = True) -> dict[str, Any]:
        """``{"a": accuracy, "z": zero count, "i": [bucket index…], "c": [count…]}``, sorted
        by bucket (``canonical``), or in the sketch's own order (cheaper without the compiled
        ``Bins``, which are always sorted; the same sketch either way)."""
        bins = self.bins
        if canonical or not isinstance(bins, PyBins):
            keys, counts = bins.sorted_lists()
        else:
            keys, counts = list(bins), list(bins.values())
        return {"a": self.relative_accuracy, "z": self.zero, "i": keys, "c": counts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> QuantileSketch:
        sketch = cls(float(state.get("a", DEFAULT_RELATIVE_ACCURACY)))
        sketch.zero = int(state.get("z", 0))
        indexes, counts = state.get("i", []), state.get("c", [])
        sketch.bins = Bins.from_lists(list(map(int, indexes)), list(map(int, counts)))
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            self.relative_accuracy == other.relative_accuracy
            and self.zero == other.zero
            and self.bins == other.bins
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"QuantileSketch(count={self.count}, buckets={len(self.bins)})"


DEFAULT_SESSION_CAP = 2048
DEFAULT_KMV_SIZE = 1024
_HASH_SPACE = float(2**63)


def py_hash63(session_id: str) -> int:
    """A 63-bit hash (fits a signed int64) that is the same in every process, unlike ``hash()``:
    BLAKE2b's 8-byte digest of the UTF-8 id, big-endian, shifted right by one."""
    digest = hashlib.blake2b(session_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def py_hash63_all(session_ids: Iterable[str]) -> list[int]:
    return [py_hash63(v) for v in session_ids]


def py_kmv_union(hashes: Sequence[int], new: Sequence[int], k: int) -> list[int]:
    """The ``k`` smallest distinct values of ``hashes`` and ``new``, ascending."""
    merged = set(hashes)
    merged.update(new)
    return sorted(merged)[:k]


try:  # the same functions, compiled (BLAKE2b written out: same hashes, about 3x faster)
    from journeylens.domain._rumscan import hash63 as stable_hash63
    from journeylens.domain._rumscan import hash63_all, kmv_union
except ImportError:
    stable_hash63 = py_hash63
    hash63_all = py_hash63_all
    kmv_union = py_kmv_union


class SessionSet:
    """Distinct session ids: an exact set up to ``cap``, then a KMV sketch of ``k`` hashes.

    Relative standard error of the sketch mode is about ``1/sqrt(k - 2)`` (~3 % for k=1024).
    ``ids`` may be added to directly on the hot path; `compact` (called by `merge`) switches to
    sketch mode once the set is larger than the cap.
    """

    __slots__ = ("ids", "hashes", "cap", "k")

    def __init__(self, cap: int = DEFAULT_SESSION_CAP, k: int = DEFAULT_KMV_SIZE) -> None:
        self.ids: set[str] = set()
        self.hashes: list[int] | None = None
        """Sketch mode: the k smallest hashes, sorted ascending. None while exact."""
        self.cap = cap
        self.k = k

    @property
    def exact(self) -> bool:
        return self.hashes is None

    def add(self, session_id: str) -> None:
        if self.hashes is None:
            self.ids.add(session_id)
            if len(self.ids) > self.cap:
                self.compact()
        else:
            self._absorb([stable_hash63(session_id)])

    def compact(self) -> None:
        """Move to sketch mode if over the cap (or fold pending ids into the sketch)."""
        if self.hashes is None and len(self.ids) <= self.cap:
            return
        pending = hash63_all(self.ids)
        self.ids = set()
        if self.hashes is None:
            self.hashes = []
        self._absorb(pending)

    def _absorb(self, hashes: list[int]) -> None:
        assert self.hashes is not None
        if hashes:
            self.hashes = kmv_union(self.hashes, hashes, self.k)

    def merge(self, other: SessionSet) -> SessionSet:
        if other.hashes is None and self.hashes is None:
            self.ids |= other.ids
            self.compact()
            return self
        if self.hashes is None:
            self.hashes = []
            pending = hash63_all(self.ids)
            self.ids = set()
            self._absorb(pending)
        assert self.hashes is not None
        self._absorb(other._all_hashes())
        return self

    def _all_hashes(self) -> list[int]:
        if self.hashes is None:
            return hash63_all(self.ids)
        return self.hashes + hash63_all(self.ids)

    def estimate(self) -> int:
        if self.hashes is None:
            return len(self.ids)
        if self.ids:
            self.compact()
        hashes = self.hashes
        assert hashes is not None
        if len(hashes) < self.k:
            return len(hashes)
        return round((self.k - 1) / ((hashes[-1] + 1) / _HASH_SPACE))

    def intersection(self, other: SessionSet) -> int:
        """Estimated number of sessions in both sets (exact when both are exact)."""
        if self.hashes is None and other.hashes is None:
            return len(self.ids & other.ids)
        mine = set(self._all_hashes())
        theirs = set(other._all_hashes())
        k = min(self.k, other.k)
        union = sorted(mine | theirs)[:k]
        if not union:
            return 0
        both = sum(1 for h in union if h in mine and h in theirs)
        if len(union) < k:
            return both
        union_size = (k - 1) / ((union[-1] + 1) / _HASH_SPACE)
        return min(round(union_size * both / len(union)), self.estimate(), other.estimate())

    def copy(self) -> SessionSet:
        other = SessionSet(self.cap, self.k)
        other.ids = set(self.ids)
        other.hashes = None if self.hashes is None else list(self.hashes)
        return other

    def to_state(self, canonical: bool = True) -> dict[str, Any]:
        """``{"ids": [...]}`` while exact (sorted when ``canonical``, else in set order: the
        same set, cheaper), ``{"h": [hash…], "k": k}`` in sketch mode."""
        if self.hashes is None:
            ids = sorted(self.ids) if canonical else list(self.ids)
            return {"ids": ids, "cap": self.cap, "k": self.k}
        self.compact()
        return {"h": list(self.hashes), "cap": self.cap, "k": self.k}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SessionSet:
        out = cls(int(state.get("cap", DEFAULT_SESSION_CAP)), int(state.get("k", DEFAULT_KMV_SIZE)))
        if "h" in state:
            out.hashes = sorted({int(h) for h in state["h"]})
        else:
            out.ids = set(state.get("ids", []))
        return out

    def __repr__(self) -> str:
        mode = "exact" if self.hashes is None else "kmv"
        return f"SessionSet({mode}, ~{self.estimate()})"
