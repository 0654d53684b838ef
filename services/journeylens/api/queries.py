"""The API's read queries. SQL text is constant (or assembled from allow-listed fragments of
`journeylens.api.metrics`); every value is a bound ``{name:Type}`` parameter.

Tables (see infra/clickhouse/migrations): journey_aggregates and journey_window_counters (0005)
are read with FINAL so a re-emitted window counts once; the rollups (0004) are replay-safe by
construction; alerts are folded to the latest event per incident with argMax(..., time).

The journey health and the timeseries are the hot reads (a dashboard of many viewers polls
them); their answers go through a `ResultCache` (a few seconds' time-to-live, one query per key
at a time, see `journeylens.api.cache`). Their time bounds are quantized to what the data can
distinguish before they become both the SQL parameters and the cache key: windows are 1-minute
tumbling windows starting on the minute (the contract), so ``window_start < 12:00:17`` and
``window_start < 12:01`` select the same windows; rollup buckets are whole hours or days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from journeylens.api.cache import ResultCache
from journeylens.api.db import Database, Row, Settings
from journeylens.api.metrics import METRICS, SUMS, Metric
from journeylens.api.params import RESOLUTION_SECONDS, Pagination, Resolution, TimeRange, sql_time

JOURNEY_LEVEL = "_journey"
RANGE = "window_start >= {from:DateTime64(3, 'UTC')} AND window_start < {to:DateTime64(3, 'UTC')}"
WINDOW_S = 60
# Small, selective reads (one series, one day of windows): more threads than this only adds
# contention when many requests run at once.
SMALL_READ: Settings = {"max_threads": 2}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Point = tuple[datetime, float | None]


@dataclass(slots=True)
class Series:
    """A timeseries answer as cached: its source table, its points ``(t, value)`` (``t`` in UTC,
    ``value`` cleaned for JSON) and, once a route asked for it, the points encoded (the same for
    every request the entry serves; encoding 720 points costs more than the cache lookup)."""

    source: str
    points: list[Point]
    _encoded: bytes | None = None

    def encoded(self, encode: Callable[[list[Point]], bytes]) -> bytes:
        if self._encoded is None:  # two threads may both encode: the same bytes
            self._encoded = encode(self.points)
        return self._encoded


def clean(value: Any, digits: int = 6) -> float | None:
    """A float for JSON: None for NULL/NaN/inf, rounded to ``digits`` decimals."""
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return None
    return round(number, digits)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _unprefixed(row: Row) -> Row:
    """Aggregates are aliased ``x_<column>`` (an alias equal to a column name would shadow the
    column in WHERE); give them their column names back."""
    return {key.removeprefix("x_"): value for key, value in row.items()}


def _sum_columns(names: Iterable[str]) -> str:
    return ", ".join(f"sum({SUMS[name].raw}) AS s_{name}" for name in names)


def floor_to(value: datetime, seconds: int) -> datetime:
    """``value`` down to a multiple of ``seconds`` since the epoch (as toStartOfInterval)."""
    elapsed = as_utc(value) - _EPOCH
    return value - elapsed % timedelta(seconds=seconds)


def ceil_to(value: datetime, seconds: int) -> datetime:
    """``value`` up to a multiple of ``seconds`` since the epoch (unchanged when on one)."""
    floor = floor_to(value, seconds)
    return floor if floor == value else floor + timedelta(seconds=seconds)


class Reader:
    """Read models over one database; the hot reads are answered through ``cache``."""

    def __init__(self, db: Database, cache: ResultCache | None = None) -> None:
        self.db = db
        self.cache = cache if cache is not None else ResultCache(ttl_s=0)

    # ------------------------------------------------------------------ journey health

    def last_windows(self, journeys: Sequence[str], at: datetime) -> dict[str, Row]:
        """The last journey-level window (within a day of ``at``) and last-hour probe runs."""
        sql = """
            SELECT
                journey,
                max(window_start) AS x_window_start,
                argMax(window_end, window_start) AS x_window_end,
                argMax(status, window_start) AS x_status,
                argMax(scope, window_start) AS x_scope,
                argMax(reasons, window_start) AS x_reasons,
                argMax(rum_lcp_ms_p75, window_start) AS x_lcp,
                argMax(rum_inp_ms_p75, window_start) AS x_inp,
                argMax(rum_cls_p75, window_start) AS x_cls,
                argMax(rum_fcp_ms_p75, window_start) AS x_fcp,
                argMax(rum_ttfb_ms_p75, window_start) AS x_ttfb,
                argMax(rum_error_rate, window_start) AS x_error_rate,
                argMax(rum_sampled_views, window_start) AS x_sampled_views,
                argMax(rum_apdex, window_start) AS x_apdex,
                argMax(rum_page_views, window_start) AS x_page_views,
                argMax(rum_sessions, window_start) AS x_sessions,
                sumIf(synthetic_runs, window_start >= {hour_ago:DateTime64(3, 'UTC')}) AS x_runs,
                sumIf(synthetic_failures, window_start >= {hour_ago:DateTime64(3, 'UTC')})
                    AS x_failures
            FROM journey_aggregates FINAL
            WHERE journey IN {journeys:Array(String)}
              AND step = '_journey' AND segment_dimension = 'all'
              AND window_start >= {since:DateTime64(3, 'UTC')}
              AND window_start <= {at:DateTime64(3, 'UTC')}
            GROUP BY journey
        """
        rows = self.db.rows(
            sql,
            {
                "journeys": list(journeys),
                "since": sql_time(at - timedelta(days=1)),
                "hour_ago": sql_time(at - timedelta(hours=1)),
                "at": sql_time(at),
            },
            SMALL_READ,
        )
        return {row["journey"]: _unprefixed(row) for row in rows}

    # ------------------------------------------------------------------------ incidents

    def incidents(
        self,
        journeys: Sequence[str],
        status: str | None,
        page: Pagination | None,
        at: datetime | None = None,
    ) -> list[Row]:
        """Incidents folded to their latest event; firing first, then the newest."""
        sql = """
            SELECT
                incident_id,
                argMax(fingerprint, time) AS x_fingerprint,
                argMax(journey, time) AS x_journey,
                argMax(journey_name, time) AS x_journey_name,
                argMax(status, time) AS x_status,
                argMax(severity, time) AS x_severity,
                argMax(scope, time) AS x_scope,
                argMax(title, time) AS x_title,
                argMax(summary, time) AS x_summary,
                min(started_at) AS x_started_at,
                argMax(resolved_at, time) AS x_resolved_at,
                max(time) AS x_updated_at,
                argMax(impact_sessions_affected, time) AS x_sessions_affected,
                argMax(impact_conversion_drop, time) AS x_conversion_drop,
                argMax(impact_lost_completions, time) AS x_lost_completions,
                argMax(impact_revenue_at_risk, time) AS x_revenue_at_risk,
                argMax(impact_currency, time) AS x_currency,
                argMax(evidence_suspected_step, time) AS x_suspected_step,
                argMax(evidence_suspected_dependency, time) AS x_suspected_dependency,
                argMax(evidence_segment_dimension, time) AS x_segment_dimension,
                argMax(evidence_segment_value, time) AS x_segment_value,
                argMax(evidence_failing_locations, time) AS x_failing_locations,
                argMax(evidence_failed_assertions, time) AS x_failed_assertions,
                argMax(signals.kind, time) AS x_signal_kind,
                argMax(signals.step, time) AS x_signal_step,
                argMax(signals.metric, time) AS x_signal_metric,
                argMax(signals.value, time) AS x_signal_value,
                argMax(signals.threshold, time) AS x_signal_threshold,
                argMax(signals.baseline, time) AS x_signal_baseline,
                argMax(signals.window_start, time) AS x_signal_window_start,
                argMax(signals.detail, time) AS x_signal_detail
            FROM alerts
            WHERE journey IN {journeys:Array(String)}
              AND time <= {at:DateTime64(3, 'UTC')}
            GROUP BY incident_id
            HAVING {status:String} = '' OR x_status = {status:String}
            ORDER BY x_status = 'firing' DESC, x_updated_at DESC, incident_id
            LIMIT {limit:UInt32} OFFSET {offset:UInt32}
        """
        rows = self.db.rows(
            sql,
            {
                "journeys": list(journeys),
                "status": status or "",
                "at": sql_time(at or datetime(2199, 1, 1, tzinfo=UTC)),
                "limit": (page.limit + 1) if page else 10_000,
                "offset": page.offset if page else 0,
            },
        )
        return [_unprefixed(row) for row in rows]

    def alert_events(
        self, journeys: Sequence[str], window: TimeRange, page: Pagination
    ) -> list[Row]:
        sql = """
            SELECT id, type, time, incident_id, fingerprint, status, severity, journey, title,
                   summary, impact_revenue_at_risk AS revenue_at_risk,
                   impact_currency AS currency
            FROM alerts FINAL
            WHERE journey IN {journeys:Array(String)}
              AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
            ORDER BY time DESC, id
            LIMIT {limit:UInt32} OFFSET {offset:UInt32}
        """
        params = {"journeys": list(journeys), **window.params()}
        return self.db.rows(sql, {**params, "limit": page.limit + 1, "offset": page.offset})

    def anomalies(
        self,
        journeys: Sequence[str],
        metric: str | None,
        window: TimeRange,
        page: Pagination,
    ) -> list[Row]:
        sql = f"""
            SELECT anomaly_id, journey, step, metric, window_start, window_end, value,
                   threshold, baseline, band_low, band_high, direction, violating_windows,
                   of_windows, scope, segment_dimension, segment_value, dependency, detected_at
            FROM anomalies FINAL
            WHERE journey IN {{journeys:Array(String)}}
              AND ({{metric:String}} = '' OR metric = {{metric:String}})
              AND {RANGE}
            ORDER BY window_start DESC, anomaly_id
            LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}
        """  # noqa: S608 - constant fragments only; values are bound parameters
        params = {"journeys": list(journeys), "metric": metric or "", **window.params()}
        return self.db.rows(sql, {**params, "limit": page.limit + 1, "offset": page.offset})

    # ------------------------------------------------------------------------ timeseries

    def timeseries(
        self,
        metric: Metric,
        journey: str,
        step: str,
        dimension: str,
        segment: str,
        window: TimeRange,
        resolution: Resolution,
    ) -> Series:
        """The metric's points at the resolution. Cached (see the module docstring).

        1-minute windows as emitted (journey_aggregates); 5-minute and hourly buckets of
        summed window counters (journey_window_counters, 0005), except whole-population Core
        Web Vitals quantiles by the hour (rum_vitals_hourly, true quantiles); days from the
        daily rollups (0004).
        """
        seconds = RESOLUTION_SECONDS[resolution]
        if resolution in ("1m", "5m"):
            # windows start on the minute: these bounds select exactly the windows of the range
            start, end = ceil_to(window.start, WINDOW_S), ceil_to(window.end, WINDOW_S)
        else:
            # whole buckets: the one holding ``from`` up to the one holding ``to``
            start, end = floor_to(window.start, seconds), ceil_to(window.end, seconds)
        params: dict[str, Any] = {
            "journey": journey,
            "step": step,
            "dimension": dimension,
            "segment": segment,
            "seconds": seconds,
            "from": sql_time(start),
            "to": sql_time(end),
        }
        if resolution == "1m":
            source, sql = "journey_aggregates", _windows_sql(metric)
        elif resolution == "1h" and metric.vital is not None and dimension == "all":
            source, sql = "rum_vitals_hourly", _vitals_sql(metric, "hourly")
        elif resolution in ("5m", "1h"):
            source, sql = "journey_window_counters", _counters_sql(metric)
        elif metric.vital is not None and dimension == "all":
            source, sql = "rum_vitals_daily", _vitals_sql(metric, "daily")
        else:
            source, sql = "journey_rollup_daily", _rollup_sql(metric, "daily")
        key = ("timeseries", source, metric.name, journey, step, dimension, segment, seconds)

        def compute() -> Series:
            rows = self.db.rows(sql, params, SMALL_READ)
            return Series(source, [(as_utc(row["t"]), clean(row["value"])) for row in rows])

        return self.cache.get((*key, start, end), compute)

    # ------------------------------------------------------------------- journey detail

    def step_sums(self, journey: str, window: TimeRange, names: Sequence[str]) -> list[Row]:
        """Per step (and '_journey'), whole population: summed counters."""
        sql = f"""
            SELECT step AS key, {_sum_columns(names)}
            FROM journey_aggregates FINAL
            WHERE journey = {{journey:String}} AND segment_dimension = 'all' AND {RANGE}
            GROUP BY key
            ORDER BY key
        """  # noqa: S608 - constant fragments only; values are bound parameters
        return self.db.rows(sql, {"journey": journey, **window.params()})

    def segments(
        self, journey: str, step: str, dimension: str, window: TimeRange, names: Sequence[str]
    ) -> list[Row]:
        sql = f"""
            SELECT segment_value AS key, {_sum_columns(names)}
            FROM journey_aggregates FINAL
            WHERE journey = {{journey:String}} AND step = {{step:String}}
              AND segment_dimension = {{dimension:String}} AND {RANGE}
            GROUP BY key
            ORDER BY s_page_views DESC, key
            LIMIT 100
        """  # noqa: S608 - constant fragments only; values are bound parameters
        params = {"journey": journey, "step": step, "dimension": dimension, **window.params()}
        return self.db.rows(sql, params)

    def dependencies(self, journey: str, window: TimeRange) -> list[Row]:
        sql = f"""
            SELECT
                host,
                anyLast(d_provider) AS x_provider,
                sum(d_requests) AS x_requests,
                sum(d_failures) AS x_failures,
                sum(d_network_errors) AS x_network_errors,
                sumIf(d_p75 * d_requests, d_p75 IS NOT NULL)
                    / nullIf(sumIf(d_requests, d_p75 IS NOT NULL), 0) AS x_p75_ms,
                arraySort(groupUniqArray(step)) AS x_steps
            FROM
            (
                SELECT step, dep.host AS host, dep.provider AS d_provider,
                       dep.requests AS d_requests, dep.failures AS d_failures,
                       dep.p75_ms AS d_p75, dep.network_errors AS d_network_errors
                FROM journey_aggregates FINAL
                ARRAY JOIN rum_dependencies AS dep
                WHERE journey = {{journey:String}} AND step != '_journey'
                  AND segment_dimension = 'all' AND {RANGE}
            )
            GROUP BY host
            ORDER BY x_failures DESC, x_p75_ms DESC, x_requests DESC, host
            LIMIT 200
        """  # noqa: S608 - constant fragments only; values are bound parameters
        rows = self.db.rows(sql, {"journey": journey, **window.params()})
        return [_unprefixed(row) for row in rows]

    def locations(self, journey: str, window: TimeRange) -> list[Row]:
        sql = f"""
            SELECT
                loc.location AS location,
                sum(loc.runs) AS x_runs,
                sum(loc.failures) AS x_failures,
                sumIf(loc.duration_ms_p95 * loc.runs, loc.duration_ms_p95 IS NOT NULL)
                    / nullIf(sumIf(loc.runs, loc.duration_ms_p95 IS NOT NULL), 0)
                    AS x_duration_p95_ms
            FROM journey_aggregates FINAL
            ARRAY JOIN synthetic_locations AS loc
            WHERE journey = {{journey:String}} AND step = '_journey'
              AND segment_dimension = 'all' AND {RANGE}
            GROUP BY location
            ORDER BY location
        """  # noqa: S608 - constant fragments only; values are bound parameters
        rows = self.db.rows(sql, {"journey": journey, **window.params()})
        return [_unprefixed(row) for row in rows]


def _formula_select(metric: Metric) -> str:
    return f"bucket AS t, {metric.formula} AS value"


def _windows_sql(metric: Metric) -> str:
    return f"""
        SELECT {_formula_select(metric)}
        FROM
        (
            SELECT toStartOfInterval(window_start, toIntervalSecond({{seconds:UInt32}}), 'UTC')
                       AS bucket,
                   {_sum_columns(metric.uses)}
            FROM journey_aggregates FINAL
            WHERE journey = {{journey:String}} AND step = {{step:String}}
              AND segment_dimension = {{dimension:String}}
              AND segment_value = {{segment:String}}
              AND {RANGE}
            GROUP BY bucket
        )
        ORDER BY t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def _counters_sql(metric: Metric) -> str:
    """Buckets of summed per-window counters (journey_window_counters, migration 0005)."""
    sums = ", ".join(f"sum({name}) AS s_{name}" for name in metric.uses)
    return f"""
        SELECT {_formula_select(metric)}
        FROM
        (
            SELECT toStartOfInterval(window_start, toIntervalSecond({{seconds:UInt32}}), 'UTC')
                       AS bucket,
                   {sums}
            FROM journey_window_counters FINAL
            WHERE journey = {{journey:String}} AND step = {{step:String}}
              AND segment_dimension = {{dimension:String}}
              AND segment_value = {{segment:String}}
              AND {RANGE}
            GROUP BY bucket
        )
        ORDER BY t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def _rollup_sql(metric: Metric, table: str) -> str:
    states = sorted({SUMS[n].rollup for n in metric.uses})
    merged = ", ".join(f"maxMapMerge({state}) AS m_{state}" for state in states)
    sums = ", ".join(
        f"arraySum(tupleElement(m_{SUMS[n].rollup}, {SUMS[n].index})) AS s_{n}" for n in metric.uses
    )
    return f"""
        SELECT {_formula_select(metric)}
        FROM
        (
            SELECT bucket, {sums}
            FROM
            (
                SELECT bucket, {merged}
                FROM journey_rollup_{table}
                WHERE journey = {{journey:String}} AND step = {{step:String}}
                  AND segment_dimension = {{dimension:String}}
                  AND segment_value = {{segment:String}}
                  AND bucket >= toStartOfInterval(
                      toDateTime({{from:DateTime64(3, 'UTC')}}, 'UTC'),
                      toIntervalSecond({{seconds:UInt32}}), 'UTC')
                  AND bucket < {{to:DateTime64(3, 'UTC')}}
                GROUP BY bucket
            )
        )
        ORDER BY t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def _vitals_sql(metric: Metric, table: str) -> str:
    assert metric.vital is not None and metric.quantile is not None
    return f"""
        SELECT bucket AS t, if(isNaN(q), NULL, q) AS value
        FROM
        (
            SELECT bucket,
                   quantilesTDigestMerge(0.5, 0.75, 0.95)({metric.vital})[{metric.quantile}] AS q
            FROM rum_vitals_{table}
            WHERE journey = {{journey:String}} AND step = {{step:String}}
              AND bucket >= toStartOfInterval(
                  toDateTime({{from:DateTime64(3, 'UTC')}}, 'UTC'),
                  toIntervalSecond({{seconds:UInt32}}), 'UTC')
              AND bucket < {{to:DateTime64(3, 'UTC')}}
            GROUP BY bucket
        )
        ORDER BY t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def metric_value(row: Mapping[str, Any], metric_name: str) -> float | None:
    """Evaluate a metric formula in Python over a row of ``s_<sum>`` values (detail routes)."""
    value: float | None = _EVALUATORS[metric_name](row)
    return value


def _ratio(num: float, den: float) -> float | None:
    return None if not den else num / den


def _q(short: str, q: str) -> Any:
    return lambda r: _ratio(r[f"s_{short}_{q}w"], r[f"s_{short}_count"])


_EVALUATORS: dict[str, Any] = {
    "rum.error_rate": lambda r: _ratio(
        min(r["s_views_with_error"], r["s_sampled_views"]), r["s_sampled_views"]
    ),
    "rum.apdex": lambda r: _ratio(
        r["s_satisfied"] + r["s_tolerating"] / 2,
        r["s_satisfied"] + r["s_tolerating"] + r["s_frustrated"],
    ),
    "synthetic.availability": lambda r: _ratio(
        r["s_synthetic_runs"] - min(r["s_synthetic_failures"], r["s_synthetic_runs"]),
        r["s_synthetic_runs"],
    ),
    "rum.lcp_ms.p75": _q("lcp", "p75"),
    "rum.inp_ms.p75": _q("inp", "p75"),
    "rum.cls.p75": _q("cls", "p75"),
    "rum.ttfb_ms.p75": _q("ttfb", "p75"),
    "rum.duration_ms.p75": _q("duration", "p75"),
    "synthetic.duration_ms.p95": _q("synthetic_duration", "p95"),
}


def uses(*metric_names: str) -> list[str]:
    """The sums needed by the metrics, plus page_views (for ordering)."""
    names = {"page_views"}
    for name in metric_names:
        names.update(METRICS[name].uses)
    return sorted(names)
