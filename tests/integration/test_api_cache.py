"""The API's answer cache: time-to-live, one query per key, errors not kept; bound quantizing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from journeylens.api.cache import ResultCache
from journeylens.api.queries import ceil_to, floor_to


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_its_time_to_live_is_over() -> None:
    clock = FakeClock()
    cache = ResultCache(ttl_s=5.0, clock=clock)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("k", compute) == 1
    clock.now += 4.9
    assert cache.get("k", compute) == 1
    assert cache.get("other", compute) == 2
    clock.now += 0.2  # 5.1 s after the first query started
    assert cache.get("k", compute) == 3
    assert cache.stats().hits == 1


def test_zero_ttl_always_queries() -> None:
    cache = ResultCache(ttl_s=0)
    calls: list[int] = []
    for _ in range(3):
        cache.get("k", lambda: calls.append(1))
    assert len(calls) == 3


def test_errors_are_not_kept() -> None:
    cache = ResultCache(ttl_s=60)

    def fail() -> int:
        raise RuntimeError("ClickHouse is down")

    with pytest.raises(RuntimeError):
        cache.get("k", fail)
    assert cache.get("k", lambda: 7) == 7


def test_concurrent_misses_run_one_query() -> None:
    cache = ResultCache(ttl_s=60)
    started = threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return "answer"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow)))]
    threads[0].start()
    started.wait(5)
    threads += [
        threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(5)
    ]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert results == ["answer"] * 6
    assert len(calls) == 1


def test_least_recently_used_goes_first() -> None:
    cache = ResultCache(ttl_s=60, max_entries=2)
    cache.get("a", lambda: 1)
    cache.get("b", lambda: 2)
    cache.get("a", lambda: 0)  # a is used again
    cache.get("c", lambda: 3)  # b goes
    assert cache.get("a", lambda: -1) == 1
    assert cache.get("b", lambda: -2) == -2


def test_bounds_are_quantized_to_whole_minutes_and_buckets() -> None:
    t = datetime(2024, 5, 1, 12, 0, 17, 250_000, tzinfo=UTC)
    assert ceil_to(t, 60) == datetime(2024, 5, 1, 12, 1, tzinfo=UTC)
    assert floor_to(t, 3600) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert ceil_to(t, 3600) == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    on = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert ceil_to(on, 60) == on == floor_to(on, 86400 // 24)
    assert floor_to(t, 86400) == datetime(2024, 5, 1, tzinfo=UTC)


def test_fresh_answers_without_running_or_waiting_for_a_query() -> None:
    clock = FakeClock()
    cache = ResultCache(ttl_s=5.0, clock=clock)
    assert cache.fresh("k") == (False, None)
    cache.get("k", lambda: "answer")
    assert cache.fresh("k") == (True, "answer")
    clock.now += 5.0
    assert cache.fresh("k") == (False, None)
    assert ResultCache(ttl_s=0).fresh("k") == (False, None)


async def test_get_async_answers_on_the_loop_and_queries_in_a_thread() -> None:
    cache = ResultCache(ttl_s=60)
    loop_thread = threading.get_ident()
    ran_in: list[int] = []

    def compute() -> str:
        ran_in.append(threading.get_ident())
        return "answer"

    assert await cache.get_async("k", compute) == "answer"
    assert await cache.get_async("k", compute) == "answer"
    assert len(ran_in) == 1 and ran_in[0] != loop_thread
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (1, 1)
