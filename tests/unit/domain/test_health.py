from __future__ import annotations

from typing import Any

from journeylens.contracts.catalog import Thresholds
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.domain.aggregation import (
    ALL,
    Key,
    RowState,
    finalize_window,
    merge_into,
    pre_aggregate_rum,
    pre_aggregate_synthetic,
)
from journeylens.domain.health import HealthPolicy, assess, rum_health, synthetic_health

from .aggregation_factories import checkout_run, demo_view, rum

T = Thresholds(lcp_p75_ms=2500, error_rate=0.05, apdex_t_ms=1000, min_availability=0.99)


def _q(p75: float | None, count: int = 100) -> dict[str, Any]:
    return {"count": count if p75 is not None else 0, "p50": p75, "p75": p75, "p95": p75}


def _rum(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sampled_views": 100,
        "lcp_ms": _q(1800),
        "inp_ms": _q(120),
        "cls": _q(0.02),
        "fcp_ms": _q(900),
        "ttfb_ms": _q(300),
        "error_rate": 0.01,
        "views_with_error": 1,
        "apdex": 0.95,
        "apdex_t_ms": 1000.0,
    }
    base.update(kw)
    return base


def _syn(runs: int = 0, failures: int = 0, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "runs": runs,
        "failures": failures,
        "availability": (runs - failures) / runs if runs else None,
        "duration_ms": _q(300, runs),
        "failed_assertions": {},
    }
    base.update(kw)
    return base


def _row(
    rum: dict[str, Any] | None = None, syn: dict[str, Any] | None = None, step: str = "payment"
) -> dict[str, Any]:
    return {"step": step, "rum": rum or {"sampled_views": 0}, "synthetic": syn or _syn()}


def test_no_data_on_either_side() -> None:
    health = assess(_row(), T)
    assert (health.status, health.scope, health.reasons) == ("no_data", "none", [])


def test_healthy() -> None:
    health = assess(_row(_rum(), _syn(3, 0)), T)
    assert (health.status, health.scope, health.reasons) == ("healthy", "none", [])


def test_slow_lcp_is_degraded_rum_only() -> None:
    health = assess(_row(_rum(lcp_ms=_q(4200))), T)
    assert (health.status, health.scope) == ("degraded", "rum_only")
    assert health.reasons == ["p75 LCP 4200 ms > 2500 ms"]


def test_cls_and_apdex_reasons() -> None:
    status, reasons = rum_health(_rum(cls=_q(0.31), apdex=0.62), T)
    assert status == "degraded"
    assert reasons == ["p75 CLS 0.31 > 0.1", "Apdex 0.62 < 0.85 (T = 1000 ms)"]


def test_error_rate_degraded_then_failing_at_twice_the_threshold() -> None:
    status, reasons = rum_health(_rum(error_rate=0.08, views_with_error=8), T)
    assert status == "degraded"
    assert reasons == ["error rate 8.0% > 5.0% (8/100 views with an error)"]
    status, reasons = rum_health(_rum(error_rate=0.10, views_with_error=10), T)
    assert status == "failing"
    assert reasons == ["error rate 10.0% ≥ 10.0% (10/100 views with an error)"]


def test_too_few_views_are_not_judged() -> None:
    status, reasons = rum_health(_rum(sampled_views=3, error_rate=1.0, apdex=0.0), T)
    assert (status, reasons) == ("healthy", [])
    status, _ = rum_health(_rum(sampled_views=3, error_rate=1.0), T, HealthPolicy(min_views=1))
    assert status == "failing"


def test_every_probe_run_failed_is_failing_synthetic_only() -> None:
    syn = _syn(3, 3, failed_assertions={"status 500 != 200": 3})
    health = assess(_row(_rum(), syn), T)
    assert (health.status, health.scope) == ("failing", "synthetic_only")
    assert health.reasons == ["payment: 3/3 probe runs failed: status 500 != 200"]


def test_availability_levels() -> None:
    status, reasons = synthetic_health(
        _syn(10, 1, failed_assertions={"timeout": 1}), T, step="cart"
    )
    assert status == "degraded"
    assert reasons == ["cart: availability 90.0% < 99.0% (1/10 probe runs failed: timeout)"]
    status, reasons = synthetic_health(_syn(4, 2, failed_assertions={"a": 1, "b": 1}), T)
    assert status == "failing"
    assert reasons == ["availability 50.0% ≤ 50% (2/4 probe runs failed: a (+1 other reason))"]


def test_probe_duration_threshold() -> None:
    thresholds = T.model_copy(update={"duration_p95_ms": 200})
    status, reasons = synthetic_health(_syn(3, 0), thresholds, step="cart")
    assert (status, reasons) == ("degraded", ["cart: p95 probe duration 300 ms > 200 ms"])


def test_both_sides_unhealthy_is_confirmed_and_worst_status_wins() -> None:
    health = assess(_row(_rum(lcp_ms=_q(3000)), _syn(3, 3, failed_assertions={"x": 3})), T)
    assert (health.status, health.scope) == ("failing", "confirmed")
    assert (health.rum_status, health.synthetic_status) == ("degraded", "failing")
    assert health.reasons == ["payment: 3/3 probe runs failed: x", "p75 LCP 3000 ms > 2500 ms"]


def test_finalized_window_carries_status_scope_and_reasons() -> None:
    catalog = demo_view()
    states: dict[Key, RowState] = {}
    views = [
        rum(step="payment", session=f"s{i}", duration=800, api_errors=1 if i < 3 else 0)
        for i in range(10)
    ]
    merge_into(states, pre_aggregate_rum(views, catalog))
    merge_into(
        states,
        pre_aggregate_synthetic(
            [checkout_run(at=i * 20, pay_status=500) for i in range(3)], catalog
        ),
    )
    rows = {(r["step"], r["segment_dimension"]): r for r in finalize_window(states, catalog)}
    payment = rows[("payment", ALL)]
    assert payment["status"] == "failing"
    assert payment["scope"] == "confirmed"
    assert payment["reasons"] == [
        "payment: 3/3 probe runs failed: status 500 != 200",
        "error rate 30.0% ≥ 4.0% (3/10 views with an error)",
        "Apdex 0.70 < 0.85 (T = 1200 ms)",
    ]
    journey = rows[(JOURNEY_LEVEL, ALL)]
    assert journey["status"] == "failing"
    assert journey["reasons"][0] == "3/3 probe runs failed: payment: status 500 != 200"
    assert rows[("payment", "country")]["scope"] == "rum_only"
