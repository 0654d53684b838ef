"""The allow-lists: metric and segment names the API accepts, mapped to SQL it wrote itself.

Nothing from a request is ever spliced into SQL: a metric name selects one of the fixed
`Metric` entries below, whose expressions are constants of this module; values (journey,
step, segment value, times) travel as bound parameters.

Every metric is a formula over *sums* of window counters (``s_<name>``), so the same formula
serves raw 1-minute windows (one window per bucket: the value as emitted), 5-minute buckets of
windows and the hourly/daily rollups (migration 0004), whose counters are the same sums kept
per bucket. Quantiles over several windows are count-weighted means of the windows' quantiles,
except where the raw-event t-digest rollup (``rum_vitals_*``) gives the true bucket quantile.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from journeylens.contracts.catalog import Thresholds


@dataclass(frozen=True, slots=True)
class Sum:
    """One additive counter: its expression over a journey_aggregates row and where the rollups
    of migration 0004 keep it: element ``index`` of ``maxMapMerge(<rollup>)`` (1 is the keys)."""

    name: str
    raw: str
    rollup: str
    index: int


ROLLUP_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "c_rum": (
        ("page_views", "rum_page_views"),
        ("sampled_views", "rum_sampled_views"),
        ("sessions", "rum_sessions"),
        ("views_with_error", "rum_views_with_error"),
        ("js_errors", "rum_js_errors"),
        ("api_errors", "rum_api_errors"),
        ("satisfied", "rum_satisfied"),
        ("tolerating", "rum_tolerating"),
        ("frustrated", "rum_frustrated"),
        ("conversions", "rum_conversions"),
    ),
    "c_flow": (
        ("synthetic_runs", "synthetic_runs"),
        ("synthetic_failures", "synthetic_failures"),
        ("funnel_entered", "funnel_sessions_entered"),
        ("funnel_completed", "funnel_sessions_completed"),
    ),
    "c_counts": (
        ("lcp_count", "rum_lcp_ms_count"),
        ("inp_count", "rum_inp_ms_count"),
        ("cls_count", "rum_cls_count"),
        ("fcp_count", "rum_fcp_ms_count"),
        ("ttfb_count", "rum_ttfb_ms_count"),
        ("duration_count", "rum_duration_ms_count"),
        ("synthetic_duration_count", "synthetic_duration_ms_count"),
    ),
}
_QUANTILE_SOURCES = (
    ("lcp", "rum_lcp_ms"),
    ("inp", "rum_inp_ms"),
    ("cls", "rum_cls"),
    ("fcp", "rum_fcp_ms"),
    ("ttfb", "rum_ttfb_ms"),
    ("duration", "rum_duration_ms"),
    ("synthetic_duration", "synthetic_duration_ms"),
)
QUANTILES = ("p50", "p75", "p95")


def _build_sums() -> dict[str, Sum]:
    sums: dict[str, Sum] = {}
    for group, members in ROLLUP_GROUPS.items():
        for index, (name, column) in enumerate(members, start=2):
            sums[name] = Sum(name, column, group, index)
    weighted = [("conversion_value", "rum_conversion_value")] + [
        (f"{short}_{q}w", f"ifNull({column}_{q}, 0) * {column}_count")
        for short, column in _QUANTILE_SOURCES
        for q in QUANTILES
    ]
    for index, (name, raw) in enumerate(weighted, start=2):
        sums[name] = Sum(name, raw, "w_values", index)
    return sums


SUMS = _build_sums()


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric the timeseries endpoint serves: a formula over ``s_<sum>`` aliases."""

    name: str
    unit: str
    uses: tuple[str, ...]
    formula: str
    vital: str | None = None  # rum_vitals_* column when the true bucket quantile exists
    quantile: int | None = None  # 1-based index into quantilesTDigest(0.5, 0.75, 0.95)


def _ratio(num: str, den: str) -> str:
    return f"if(s_{den} = 0, NULL, s_{num} / s_{den})"


def _build_metrics() -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    counters = {
        "rum.page_views": "page_views",
        "rum.sampled_views": "sampled_views",
        "rum.sessions": "sessions",
        "rum.js_errors": "js_errors",
        "rum.api_errors": "api_errors",
        "rum.views_with_error": "views_with_error",
        "rum.conversions": "conversions",
        "synthetic.runs": "synthetic_runs",
        "synthetic.failures": "synthetic_failures",
        "funnel.sessions_entered": "funnel_entered",
        "funnel.sessions_completed": "funnel_completed",
    }
    for name, sum_name in counters.items():
        metrics[name] = Metric(name, "count", (sum_name,), f"toFloat64(s_{sum_name})")
    metrics["rum.conversion_value"] = Metric(
        "rum.conversion_value", "currency", ("conversion_value",), "s_conversion_value"
    )
    metrics["rum.error_rate"] = Metric(
        "rum.error_rate",
        "ratio",
        ("views_with_error", "sampled_views"),
        "if(s_sampled_views = 0, NULL, least(s_views_with_error, s_sampled_views) "
        "/ s_sampled_views)",
    )
    metrics["rum.apdex"] = Metric(
        "rum.apdex",
        "ratio",
        ("satisfied", "tolerating", "frustrated"),
        "if(s_satisfied + s_tolerating + s_frustrated = 0, NULL, "
        "(s_satisfied + s_tolerating / 2) / (s_satisfied + s_tolerating + s_frustrated))",
    )
    metrics["synthetic.availability"] = Metric(
        "synthetic.availability",
        "ratio",
        ("synthetic_runs", "synthetic_failures"),
        "if(s_synthetic_runs = 0, NULL, "
        "(s_synthetic_runs - least(s_synthetic_failures, s_synthetic_runs)) / s_synthetic_runs)",
    )
    metrics["funnel.completion_rate"] = Metric(
        "funnel.completion_rate",
        "ratio",
        ("funnel_completed", "funnel_entered"),
        _ratio("funnel_completed", "funnel_entered"),
    )
    for short, column in _QUANTILE_SOURCES:
        prefix = (
            "synthetic.duration_ms"
            if short == "synthetic_duration"
            else column.replace("rum_", "rum.")
        )
        unit = "score" if short == "cls" else "ms"
        vital = short if short in ("lcp", "inp", "cls", "fcp", "ttfb") else None
        for position, q in enumerate(QUANTILES, start=1):
            name = f"{prefix}.{q}"
            metrics[name] = Metric(
                name,
                unit,
                (f"{short}_{q}w", f"{short}_count"),
                _ratio(f"{short}_{q}w", f"{short}_count"),
                vital=f"{vital}_ms" if vital not in (None, "cls") else vital,
                quantile=position if vital is not None else None,
            )
    return metrics


METRICS = _build_metrics()
METRIC_NAMES = tuple(sorted(METRICS))
# The series the journey page charts side by side, all for one journey, step and range
# (dashboard/app.js, CHARTS): the API answers those of one source with one query.
CHART_METRICS = (
    "rum.lcp_ms.p75",
    "rum.inp_ms.p75",
    "rum.cls.p75",
    "rum.error_rate",
    "rum.apdex",
    "synthetic.availability",
    "rum.page_views",
    "funnel.completion_rate",
)


class Dimension(StrEnum):
    """Segment dimensions of journey_aggregates (values are bounded top-N + "other")."""

    COUNTRY = "country"
    DEVICE_CLASS = "device_class"
    BROWSER = "browser"
    CONNECTION_TYPE = "connection_type"


class SegmentDimension(StrEnum):
    ALL = "all"
    COUNTRY = "country"
    DEVICE_CLASS = "device_class"
    BROWSER = "browser"
    CONNECTION_TYPE = "connection_type"


@dataclass(frozen=True, slots=True)
class Band:
    """Good up to ``good``, poor beyond ``poor``; ``direction`` says which way is bad."""

    good: float
    poor: float
    direction: Literal["above", "below"] = "above"


# web-vitals library thresholds (good / poor), judged at p75
VITAL_POOR = {"lcp": 4000.0, "inp": 500.0, "cls": 0.25, "fcp": 3000.0, "ttfb": 1800.0}


def vital_good(thresholds: Thresholds, vital: str) -> float:
    return {
        "lcp": thresholds.lcp_p75_ms,
        "inp": thresholds.inp_p75_ms,
        "cls": thresholds.cls_p75,
        "fcp": thresholds.fcp_p75_ms,
        "ttfb": thresholds.ttfb_p75_ms,
    }[vital]


def vital_band(thresholds: Thresholds, vital: str) -> Band:
    good = vital_good(thresholds, vital)
    return Band(good, max(good, VITAL_POOR[vital]))


def band_for(metric: str, thresholds: Thresholds) -> Band | None:
    """The acceptable band of a metric from the catalog thresholds, if it has one."""
    for vital in VITAL_POOR:
        if metric in (f"rum.{vital}_ms.p75", f"rum.{vital}.p75"):
            return vital_band(thresholds, vital)
    if metric == "rum.error_rate":
        return Band(thresholds.error_rate, min(1.0, thresholds.error_rate * 2))
    if metric == "rum.apdex":
        return Band(0.85, 0.7, "below")
    if metric == "synthetic.availability":
        floor = thresholds.min_availability
        return Band(floor, max(0.0, 1 - 2 * (1 - floor)), "below")
    if metric == "synthetic.duration_ms.p95" and thresholds.duration_p95_ms is not None:
        return Band(thresholds.duration_p95_ms, thresholds.duration_p95_ms * 1.5)
    return None


RatingName = Literal["good", "needs_improvement", "poor", "no_data"]


def rating(value: float | None, band: Band) -> RatingName:
    if value is None:
        return "no_data"
    if band.direction == "above":
        if value <= band.good:
            return "good"
        return "poor" if value > band.poor else "needs_improvement"
    if value >= band.good:
        return "good"
    return "poor" if value < band.poor else "needs_improvement"
