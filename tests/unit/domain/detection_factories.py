"""Fabricate experience.aggregates.v1 rows (JSON-mode dicts) for the detection tests."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from journeylens.contracts.catalog import Catalog, Journey, load_catalog
from journeylens.contracts.common import JOURNEY_LEVEL

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # a Monday
WINDOW = timedelta(minutes=1)


@functools.cache
def demo_catalog() -> Catalog:
    return load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml")


def checkout(catalog: Catalog | None = None) -> Journey:
    journey = (catalog or demo_catalog()).journey("checkout")
    assert journey is not None
    return journey


def _q(p75: float | None, count: int) -> dict[str, Any]:
    if p75 is None:
        return {"count": 0, "p50": None, "p75": None, "p95": None}
    return {"count": count, "p50": p75 * 0.8, "p75": p75, "p95": p75 * 1.6}


def row(
    step: str = JOURNEY_LEVEL,
    start: datetime = T0,
    *,
    journey: str = "checkout",
    segment: tuple[str, str] = ("all", "all"),
    views: int = 200,
    sessions: int | None = None,
    lcp: float = 1800.0,
    inp: float = 120.0,
    cls: float = 0.05,
    ttfb: float = 400.0,
    error_rate: float = 0.005,
    apdex: float = 0.93,
    runs: int = 1,
    failures: int = 0,
    duration_p95: float | None = 600.0,
    locations: list[dict[str, Any]] | None = None,
    failed_assertions: dict[str, int] | None = None,
    dependencies: list[dict[str, Any]] | None = None,
    entered: int = 0,
    completed: int = 0,
    size: timedelta = WINDOW,
) -> dict[str, Any]:
    """One aggregate row; every field the contract requires, plausible values."""
    errors = round(error_rate * views)
    satisfied = round(apdex * views)
    sessions = int(views * 0.8) if sessions is None else sessions
    if locations is None:
        locations = [
            {
                "location": "local-1",
                "runs": runs,
                "failures": failures,
                "availability": (runs - failures) / runs if runs else None,
                "duration_ms_p95": duration_p95,
            }
        ]
    dim, value = segment
    return {
        "aggregate_id": f"{journey}|{step}|{start.isoformat()}|{dim}|{value}",
        "journey": journey,
        "step": step,
        "window_start": start.isoformat(),
        "window_end": (start + size).isoformat(),
        "segment_dimension": dim,
        "segment_value": value,
        "rum": {
            "page_views": views,
            "sampled_views": views,
            "sessions": sessions,
            "lcp_ms": _q(lcp, views),
            "inp_ms": _q(inp, views),
            "cls": _q(cls, views),
            "fcp_ms": _q(lcp * 0.6, views),
            "ttfb_ms": _q(ttfb, views),
            "duration_ms": _q(lcp * 1.2, views),
            "js_errors": errors,
            "api_errors": 0,
            "views_with_error": errors,
            "error_rate": errors / views if views else 0.0,
            "apdex": satisfied / views if views else None,
            "apdex_t_ms": 1200.0,
            "satisfied": satisfied,
            "tolerating": 0,
            "frustrated": views - satisfied,
            "conversions": completed,
            "conversion_value": completed * 85.0,
            "late_events": 0,
            "dependencies": dependencies or [],
        },
        "synthetic": {
            "runs": runs,
            "failures": failures,
            "availability": (runs - failures) / runs if runs else None,
            "duration_ms": _q(duration_p95, runs) if runs else _q(None, 0),
            "dns_ms": _q(None, 0),
            "connect_ms": _q(None, 0),
            "tls_ms": _q(None, 0),
            "ttfb_ms": _q(None, 0),
            "transfer_ms": _q(None, 0),
            "locations": locations if runs else [],
            "failed_assertions": failed_assertions or {},
        },
        "funnel": {
            "sessions_entered": entered,
            "sessions_completed": completed,
            "completion_rate": completed / entered if entered else None,
        },
        "status": "healthy",
        "scope": "none",
        "reasons": [],
        "sketch_relative_accuracy": 0.01,
        "schema_version": 1,
    }


def window(
    start: datetime,
    *,
    journey: Journey | None = None,
    step_overrides: dict[str, dict[str, Any]] | None = None,
    extra: list[dict[str, Any]] | None = None,
    entered: int = 100,
    completed: int = 30,
    **common: Any,
) -> list[dict[str, Any]]:
    """All whole-population rows of one window (every step + ``_journey``), plus ``extra``."""
    journey = journey or checkout()
    overrides = step_overrides or {}
    rows = [
        row(s.id, start, journey=journey.id, **{**common, **overrides.get(s.id, {})})
        for s in journey.steps
    ]
    rows.append(
        row(
            JOURNEY_LEVEL,
            start,
            journey=journey.id,
            entered=entered,
            completed=completed,
            **{**common, **overrides.get(JOURNEY_LEVEL, {})},
        )
    )
    return rows + list(extra or [])


def starts(first: datetime, count: int, size: timedelta = WINDOW) -> Iterator[datetime]:
    for i in range(count):
        yield first + i * size


def noisy_day_values(rng: random.Random, at: datetime, base: float, sigma: float) -> float:
    """A daily cycle (±30 %, peak at 20:00 UTC) times lognormal noise."""
    hour = at.hour + at.minute / 60
    cycle = 1 + 0.3 * math.sin((hour - 14) / 24 * 2 * math.pi)
    return base * cycle * math.exp(rng.gauss(0, sigma))
