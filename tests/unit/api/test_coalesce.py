"""Coalescing: concurrent reads of one shape share a fetch; answers and errors reach everyone."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import pytest

from journeylens.api.coalesce import Coalescer


class SlowFetch:
    """Records each batch; the first one blocks until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, members: Sequence[str]) -> Mapping[str, str]:
        self.batches.append(sorted(members))
        if len(self.batches) == 1:
            self.started.set()
            self.release.wait(5)
        return {m: m.upper() for m in members if m != "none"}


def _run(coalescer: Coalescer[str, str], fetch: SlowFetch, member: str, out: dict) -> None:
    try:
        out[member] = coalescer.get("shape", member, fetch, "default")
    except Exception as exc:  # the test collects what each caller saw
        out[member] = exc


def test_members_arriving_while_a_batch_runs_share_the_next_fetch() -> None:
    coalescer: Coalescer[str, str] = Coalescer()
    fetch = SlowFetch()
    out: dict[str, object] = {}
    first = threading.Thread(target=_run, args=(coalescer, fetch, "a", out))
    first.start()
    assert fetch.started.wait(5)
    rest = [threading.Thread(target=_run, args=(coalescer, fetch, m, out)) for m in "bcd"]
    rest.append(threading.Thread(target=_run, args=(coalescer, fetch, "none", out)))
    for thread in rest:
        thread.start()
    while sum(len(b.members) for b in coalescer._open.values()) < 4:  # all joined the next
        threading.Event().wait(0.005)
    fetch.release.set()
    for thread in [first, *rest]:
        thread.join(5)
    assert fetch.batches == [["a"], ["b", "c", "d", "none"]]
    assert out == {"a": "A", "b": "B", "c": "C", "d": "D", "none": "default"}
    assert coalescer.batches == 2


def test_a_quiet_shape_fetches_at_once_and_shapes_do_not_wait_for_each_other() -> None:
    coalescer: Coalescer[str, int] = Coalescer()
    assert coalescer.get("x", "a", lambda ms: {m: len(ms) for m in ms}, -1) == 1
    assert coalescer.get("y", "a", lambda ms: dict.fromkeys(ms, 2), -1) == 2
    assert coalescer.batches == 2


def test_an_error_reaches_every_member_of_the_batch() -> None:
    coalescer: Coalescer[str, str] = Coalescer()
    fetch = SlowFetch()
    out: dict[str, object] = {}
    first = threading.Thread(target=_run, args=(coalescer, fetch, "a", out))
    first.start()
    assert fetch.started.wait(5)

    def failing(members: Sequence[str]) -> Mapping[str, str]:
        raise RuntimeError(f"ClickHouse is down for {sorted(members)}")

    late = [
        threading.Thread(
            target=lambda m=m: out.__setitem__(m, _catch(coalescer, m, failing)),
        )
        for m in "bc"
    ]
    for thread in late:
        thread.start()
    while sum(len(b.members) for b in coalescer._open.values()) < 2:
        threading.Event().wait(0.005)
    fetch.release.set()
    for thread in [first, *late]:
        thread.join(5)
    assert out["a"] == "A"
    assert isinstance(out["b"], RuntimeError) and out["b"] is out["c"]
    # the next batch after a failure runs normally
    assert coalescer.get("shape", "d", lambda ms: dict.fromkeys(ms, "ok"), "default") == "ok"


def _catch(coalescer: Coalescer[str, str], member: str, fetch: object) -> object:
    try:
        return coalescer.get("shape", member, fetch, "default")  # type: ignore[arg-type]
    except RuntimeError as exc:
        return exc


def test_the_fetch_error_is_not_swallowed_for_a_lone_caller() -> None:
    coalescer: Coalescer[str, str] = Coalescer()

    def failing(members: Sequence[str]) -> Mapping[str, str]:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        coalescer.get("shape", "a", failing, "default")
