from __future__ import annotations

import json
import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.domain.aggregation import (
    ALL,
    OTHER,
    Key,
    RowState,
    RumAggregator,
    finalize,
    finalize_window,
    fold_top_n,
    merge_into,
    pre_aggregate_rum,
    pre_aggregate_synthetic,
    take_window,
)

from .aggregation_factories import T0_S, checkout_run, demo_view, probe_run, rum, step_result

CART: Key = ("checkout", "cart", T0_S, ALL, ALL)


def _rows(
    events: list[dict[str, Any]], runs: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[Key, dict[str, Any]]:
    catalog = demo_view()
    states: dict[Key, RowState] = {}
    merge_into(states, pre_aggregate_rum(events, catalog))
    merge_into(states, pre_aggregate_synthetic(runs or [], catalog))
    rows = finalize_window(states, catalog, **kw)
    return {
        (r["journey"], r["step"], T0_S, r["segment_dimension"], r["segment_value"]): r for r in rows
    }


def _known_events() -> list[dict[str, Any]]:
    return [
        rum(duration=1000, lcp=2000, session="s1", page="p1"),  # satisfied (T = 1200)
        rum(duration=3000, session="s1", sample_rate=0.5),  # tolerating, weight 2
        rum(duration=6000, session="s2", country="DE", page="p3"),  # frustrated
        rum(duration=500, session="s3", country="DE", js_errors=1, page="p4"),  # error: frustrated
        rum(lcp=1100, session="s4"),  # no duration: Apdex on LCP, satisfied
        rum(kind="web_vital", inp=150, session="s1", page="p1"),
        rum(kind="error", js_errors=2, session="s2", country="DE", page="p3"),
        rum(kind="conversion", conversion_value=85.0, session="s2", country="DE"),
        rum(duration=99_000, session="probe", synthetic=True),  # probe traffic: left out
    ]


def test_exact_rum_numbers_from_known_input() -> None:
    stats = _rows(_known_events())[CART]["rum"]
    assert stats["sampled_views"] == 5
    assert stats["page_views"] == 6
    assert stats["sessions"] == 4
    assert (stats["satisfied"], stats["tolerating"], stats["frustrated"]) == (2, 1, 2)
    assert stats["apdex"] == 0.5  # (2 + 1/2) / 5
    assert stats["apdex_t_ms"] == 1200.0
    assert stats["js_errors"] == 3
    assert stats["api_errors"] == 0
    assert stats["views_with_error"] == 2
    assert stats["error_rate"] == 0.4
    assert stats["conversions"] == 1
    assert stats["conversion_value"] == 85.0
    assert stats["late_events"] == 0
    assert stats["duration_ms"]["count"] == 4
    assert stats["lcp_ms"]["count"] == 2
    assert stats["inp_ms"]["count"] == 1
    assert abs(stats["inp_ms"]["p50"] - 150) <= 1.5


def test_segment_rows_split_the_population() -> None:
    rows = _rows(_known_events())
    fr = rows[("checkout", "cart", T0_S, "country", "FR")]["rum"]
    de = rows[("checkout", "cart", T0_S, "country", "DE")]["rum"]
    assert (fr["sampled_views"], fr["page_views"], fr["sessions"]) == (3, 4, 2)
    assert (de["sampled_views"], de["page_views"], de["sessions"]) == (2, 2, 2)
    assert de["views_with_error"] == 2 and de["error_rate"] == 1.0
    assert fr["satisfied"] == 2 and fr["tolerating"] == 1
    assert de["conversions"] == 1
    device = rows[("checkout", "cart", T0_S, "device_class", "desktop")]["rum"]
    assert device["sampled_views"] == 5
    journey = rows[("checkout", JOURNEY_LEVEL, T0_S, ALL, ALL)]
    assert journey["rum"]["sampled_views"] == 5
    assert journey["rum"]["apdex_t_ms"] == 1200.0
    assert not any(k[1] == JOURNEY_LEVEL and k[3] != ALL for k in rows)


def test_rows_are_journey_aggregates_exactly() -> None:
    rows = _rows(_known_events(), [checkout_run(), checkout_run(pay_status=500)])
    assert rows
    for row in rows.values():
        parsed = JourneyAggregate.model_validate(row)
        assert parsed.model_dump(mode="json") == row
        assert orjson.loads(orjson.dumps(row)) == row
    row = rows[CART]
    assert row["aggregate_id"] == "checkout|cart|2025-03-03T12:00:00Z|all|all"
    assert row["window_start"] == "2025-03-03T12:00:00Z"
    assert row["window_end"] == "2025-03-03T12:01:00Z"


def test_every_catalog_step_gets_a_row() -> None:
    rows = _rows([rum(step="cart")])
    steps = {k[1] for k in rows if k[0] == "checkout" and k[3] == ALL}
    assert steps == {"cart", "checkout-page", "payment", "confirmation", JOURNEY_LEVEL}
    assert rows[("checkout", "payment", T0_S, ALL, ALL)]["status"] == "no_data"


def test_top_n_values_plus_other() -> None:
    events = []
    for i in range(12):
        events += [rum(country=f"C{i:02d}", session=f"s{i}-{j}") for j in range(i + 1)]
    rows = _rows(events, top_n=3)
    countries = {
        k[4]: r["rum"]["sampled_views"]
        for k, r in rows.items()
        if k[:2] == ("checkout", "cart") and k[3] == "country"
    }
    assert countries == {"C11": 12, "C10": 11, "C09": 10, OTHER: sum(range(1, 10))}
    assert rows[(*CART[:3], "country", OTHER)]["rum"]["sessions"] == sum(range(1, 10))
    assert sum(countries.values()) == rows[CART]["rum"]["sampled_views"]


def test_fold_ties_break_by_name_and_existing_other_is_merged() -> None:
    catalog = demo_view()
    events = [rum(browser=b) for b in ("b", "a", "c", "other")]
    states = pre_aggregate_rum(events, catalog)
    folded = fold_top_n(states, top_n=2)
    browsers = sorted(k[4] for k in folded if k[3] == "browser" and k[1] == "cart")
    assert browsers == ["a", "b", OTHER]
    assert folded[(*CART[:3], "browser", OTHER)].rum.views == 2  # type: ignore[union-attr]


def test_late_events_are_counted_in_the_current_window_not_dropped() -> None:
    catalog = demo_view()
    watermark = T0_S + 200  # window T0 closed at T0 + 90
    batch = pre_aggregate_rum(
        [rum(at=10), rum(at=20), rum(at=185)], catalog, window_s=60, watermark=watermark
    )
    assert batch.late_events == 2
    current = batch[("checkout", "cart", T0_S + 180, ALL, ALL)]
    assert current.rum is not None and current.rum.late_events == 2 and current.rum.views == 1
    assert not any(k[2] == T0_S for k in batch)
    assert batch.windows == {T0_S + 180}
    assert batch.max_event_ts == T0_S + 185
    rows = finalize_window(batch, catalog)
    assert (
        next(r for r in rows if r["step"] == "cart" and r["segment_dimension"] == ALL)["rum"][
            "late_events"
        ]
        == 2
    )


def test_unknown_journeys_and_steps_are_not_aggregated() -> None:
    batch = pre_aggregate_rum(
        [rum(journey="_unmapped", step="_unmapped"), rum(step="nope"), rum(journey="x")],
        demo_view(),
    )
    assert not batch and batch.unmapped_events == 3


def test_dependencies_and_network_errors() -> None:
    events = [
        rum(
            dependencies=[
                {
                    "host": "127.0.0.1:8602",
                    "provider": "cdn",
                    "requests": 4,
                    "failures": 1,
                    "total_duration_ms": 400,
                }
            ]
        ),
        rum(
            dependencies=[
                {
                    "host": "127.0.0.1:8602",
                    "provider": "cdn",
                    "requests": 2,
                    "total_duration_ms": 600,
                }
            ]
        ),
        rum(
            kind="network_error",
            url="https://pay.localhost/v1/charges",
            network_error={"type": "tcp.timed_out", "phase": "connection"},
        ),
    ]
    deps = {d["host"]: d for d in _rows(events)[CART]["rum"]["dependencies"]}
    cdn = deps["127.0.0.1:8602"]
    assert (cdn["requests"], cdn["failures"], cdn["provider"]) == (6, 1, "cdn")
    assert cdn["failure_rate"] == round(1 / 6, 6)
    assert abs(cdn["p75_ms"] - 100) <= 1  # per-page means 100 and 300; lower quantile
    assert deps["pay.localhost"]["network_errors"] == 1
    assert deps["pay.localhost"]["requests"] == 0


def test_synthetic_step_and_journey_rows() -> None:
    runs = [
        checkout_run(at=1),
        checkout_run(at=21, pay_status=500),
        checkout_run(at=41, location="eu-west"),
    ]
    rows = _rows([], runs)
    payment = rows[("checkout", "payment", T0_S, ALL, ALL)]["synthetic"]
    assert (payment["runs"], payment["failures"]) == (3, 1)
    assert payment["availability"] == round(2 / 3, 6)
    assert payment["failed_assertions"] == {"status 500 != 200": 1}
    assert {loc["location"]: (loc["runs"], loc["failures"]) for loc in payment["locations"]} == {
        "eu-west": (1, 0),
        "local-1": (2, 1),
    }
    assert abs(payment["duration_ms"]["p95"] - 300) <= 3
    confirmation = rows[("checkout", "confirmation", T0_S, ALL, ALL)]["synthetic"]
    assert confirmation["runs"] == 2  # skipped after the failure
    cart = rows[("checkout", "cart", T0_S, ALL, ALL)]["synthetic"]
    assert cart["dns_ms"]["count"] == 3 and abs(cart["ttfb_ms"]["p50"] - 80) <= 1
    journey = rows[("checkout", JOURNEY_LEVEL, T0_S, ALL, ALL)]["synthetic"]
    assert (journey["runs"], journey["failures"]) == (3, 1)
    assert journey["failed_assertions"] == {"payment: status 500 != 200": 1}
    assert abs(journey["duration_ms"]["p50"] - 770) <= 8


def test_probe_error_runs_count_as_failures_with_their_error() -> None:
    run = probe_run(
        [step_result("cart", status="failed", http_status=None)],
        status="error",
        error="connect timeout",
    )
    journey = _rows([], [run])[("checkout", JOURNEY_LEVEL, T0_S, ALL, ALL)]["synthetic"]
    assert journey["failures"] == 1
    assert journey["failed_assertions"] == {"cart: failed": 1}


def test_funnel_counts_sessions_per_step_and_completion() -> None:
    events = [rum(step="cart", session=s) for s in ("s1", "s2", "s3", "s4")]
    events += [rum(step="checkout-page", session=s, url="/checkout") for s in ("s1", "s2", "s3")]
    events += [rum(step="confirmation", session=s) for s in ("s1", "s2")]
    rows = _rows(events)
    assert rows[CART]["funnel"] == {
        "sessions_entered": 4,
        "sessions_completed": 2,
        "completion_rate": 0.5,
    }
    assert rows[("checkout", "payment", T0_S, ALL, ALL)]["funnel"]["sessions_entered"] == 0
    journey = rows[("checkout", JOURNEY_LEVEL, T0_S, ALL, ALL)]["funnel"]
    assert journey == {"sessions_entered": 4, "sessions_completed": 2, "completion_rate": 0.5}


def test_same_input_twice_gives_the_same_rows_in_any_order() -> None:
    events = _known_events() + [
        rum(at=i, session=f"x{i % 7}", duration=100.0 * i, country=f"C{i % 11}") for i in range(60)
    ]
    runs = [checkout_run(at=5), checkout_run(at=25, pay_status=503)]
    first = _rows(events, runs)
    second = _rows(events, runs)
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    third = _rows(shuffled, runs[::-1])
    assert first == second == third


def test_state_round_trips_through_json() -> None:
    catalog = demo_view()
    states: dict[Key, RowState] = {}
    merge_into(states, pre_aggregate_rum(_known_events(), catalog))
    merge_into(states, pre_aggregate_synthetic([checkout_run(pay_status=500)], catalog))
    restored = {
        k: RowState.from_state(json.loads(json.dumps(v.to_state()))) for k, v in states.items()
    }
    assert finalize_window(restored, catalog) == finalize_window(states, catalog)


def test_take_window_removes_only_that_window() -> None:
    catalog = demo_view()
    states: dict[Key, RowState] = {}
    merge_into(states, pre_aggregate_rum([rum(at=1), rum(at=61)], catalog))
    taken = take_window(states, T0_S)
    assert {k[2] for k in taken} == {T0_S} and {k[2] for k in states} == {T0_S + 60}


def test_finalize_one_row_without_a_window() -> None:
    catalog = demo_view()
    batch = pre_aggregate_rum([rum(duration=900)], catalog)
    row = finalize(CART, batch[CART], catalog.thresholds_for("checkout", "cart"))
    JourneyAggregate.model_validate(row)
    assert row["funnel"]["sessions_entered"] == 1


# ---- equivalence and merge properties (hypothesis) ------------------------------------------

event_strategy = st.builds(
    lambda at, kind, session, country, browser, lcp, dur, err, rate, cls: rum(
        at=at,
        kind=kind,
        session=f"s{session}",
        country=country,
        browser=browser,
        lcp=lcp,
        duration=dur,
        js_errors=err,
        sample_rate=rate,
        cls=cls,
        conversion_value=10.0 if kind == "conversion" else None,
        step=random.Random(session).choice(["cart", "checkout-page", "confirmation"]),
    ),
    at=st.integers(0, 179),
    kind=st.sampled_from(
        ["page_view", "page_view", "soft_navigation", "web_vital", "error", "conversion"]
    ),
    session=st.integers(0, 15),
    country=st.sampled_from(["FR", "DE", "US", "unknown"]),
    browser=st.sampled_from(["Chrome", "Firefox", "Safari"]),
    lcp=st.none() | st.floats(0, 20_000),
    dur=st.none() | st.floats(0, 20_000),
    err=st.integers(0, 2),
    rate=st.sampled_from([1.0, 0.5, 0.25]),
    cls=st.none() | st.sampled_from([0.0, 0.05, 0.3]),
)


def _all_rows(states: dict[Key, RowState]) -> list[dict[str, Any]]:
    return finalize_window(states, demo_view())


@settings(max_examples=40, deadline=None)
@given(st.lists(event_strategy, max_size=40), st.lists(st.integers(0, 40), max_size=4))
def test_batches_merged_equal_everything_at_once(
    events: list[dict[str, Any]], cuts: list[int]
) -> None:
    catalog = demo_view()
    whole: dict[Key, RowState] = {}
    merge_into(whole, pre_aggregate_rum(events, catalog))
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    pieces: dict[Key, RowState] = {}
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        merge_into(pieces, pre_aggregate_rum(events[lo:hi], catalog))
    assert _all_rows(pieces) == _all_rows(whole)


@settings(max_examples=40, deadline=None)
@given(st.lists(event_strategy, max_size=40))
def test_batch_path_equals_the_per_event_aggregator(events: list[dict[str, Any]]) -> None:
    catalog = demo_view()
    agg = RumAggregator()
    reference: dict[Key, RowState] = {}
    for ev in events:
        start = T0_S + int(ev["timestamp"][14:16]) * 60
        ctx = ev["context"]
        keys = [
            (ev["journey"], ev["step"], start, ALL, ALL),
            (ev["journey"], JOURNEY_LEVEL, start, ALL, ALL),
        ]
        keys += [
            (ev["journey"], ev["step"], start, dim, ctx[dim])
            for dim in ("country", "device_class", "browser", "connection_type")
        ]
        for key in keys:
            row = reference.setdefault(key, RowState(agg.initialize()))
            assert row.rum is not None
            agg.add(
                row.rum,
                ev,
                catalog.thresholds_for("checkout", ev["step"]).apdex_t_ms,
                dependencies=key[3] == ALL,
            )
    fast: dict[Key, RowState] = {}
    merge_into(fast, pre_aggregate_rum(events, catalog))
    assert _all_rows(fast) == _all_rows(reference)
