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

journey_rollup_hourly (0004) is not read: its keyed maxMap states make an hourly series over 30
days cost ~100-140 ms per metric on the bench's data (1M aggregate rows), the same numbers from
journey_window_counters ~14 ms (0005 says why). Its daily sibling is read beyond 60 days.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from journeylens.api.cache import ResultCache
from journeylens.api.coalesce import Coalescer
from journeylens.api.db import Database, Row, Settings
from journeylens.api.metrics import CHART_METRICS, METRICS, SUMS, Metric
from journeylens.api.params import RESOLUTION_SECONDS, Pagination, Resolution, TimeRange, sql_time

JOURNEY_LEVEL = "_journey"
RANGE = "window_start >= {from:DateTime64(3, 'UTC')} AND window_start < {to:DateTime64(3, 'UTC')}"
WINDOW_S = 60
# Small, selective reads (one series, one day of windows): more threads than this only adds
# contention when many requests run at once. And no JIT compilation: ClickHouse compiles an
# expression the 3rd time it sees it (min_count_to_compile_expression), inside that query; over
# a few thousand rows that costs ~100 ms, several times the query, and saves nothing after.
SMALL_READ: Settings = {
    "max_threads": 2,
    "compile_expressions": 0,
    "compile_aggregate_expressions": 0,
}
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


@dataclass(slots=True)
class SeriesSet:
    """The answer of one timeseries query as cached: the bucket times, the values of every
    metric it computed (NaN: no value; 8 bytes a value, as most are never asked for) and the
    `Series` of each metric a route asked for, made once."""

    source: str
    times: list[datetime]
    values: dict[str, array[float]]
    _series: dict[str, Series] = field(default_factory=dict)

    def series(self, metric: str) -> Series:
        made = self._series.get(metric)
        if made is None:  # two threads may both make it: equal series, one is kept
            points = [
                (t, None if math.isnan(v) else v)
                for t, v in zip(self.times, self.values[metric], strict=True)
            ]
            made = self._series.setdefault(metric, Series(self.source, points))
        return made


def clean(value: Any, digits: int = 6) -> float | None:
    """A float for JSON: None for NULL/NaN/inf, rounded to ``digits`` decimals."""
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return None
    return round(number, digits)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _series_set(source: str, names: Sequence[str], rows: Sequence[Row]) -> SeriesSet:
    """The rows ``(t, v0, v1, ...)`` of one journey as the answer for metrics ``names``."""
    values = {
        name: array("d", (_or_nan(clean(row[f"v{i}"])) for row in rows))
        for i, name in enumerate(names)
    }
    return SeriesSet(source, [as_utc(row["t"]) for row in rows], values)


def _series_sets(source: str, names: Sequence[str], rows: Sequence[Row]) -> dict[str, SeriesSet]:
    """Rows ordered by journey as the answer of each journey."""
    by_journey: dict[str, list[Row]] = {}
    for row in rows:
        by_journey.setdefault(row["journey"], []).append(row)
    return {journey: _series_set(source, names, of) for journey, of in by_journey.items()}


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
        # timeseries misses of the same shape (all but the journey) share a query
        self.batches: Coalescer[str, SeriesSet] = Coalescer()

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
            SMALL_READ,
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

    async def timeseries(
        self,
        metric: Metric,
        journey: str,
        step: str,
        dimension: str,
        segment: str,
        window: TimeRange,
        resolution: Resolution,
    ) -> Series:
        """The metric's points at the resolution. Cached (see the module docstring): a cached
        answer comes back on the event loop, a query runs in a worker thread."""
        key, compute = self._timeseries_query(
            metric, journey, step, dimension, segment, window, resolution
        )
        return (await self.cache.get_async(key, compute)).series(metric.name)

    def _timeseries_query(
        self,
        metric: Metric,
        journey: str,
        step: str,
        dimension: str,
        segment: str,
        window: TimeRange,
        resolution: Resolution,
    ) -> tuple[Hashable, Callable[[], SeriesSet]]:
        """The cache key and the query of a timeseries.

        1-minute windows as emitted (journey_aggregates); 5-minute and hourly buckets of
        summed window counters (journey_window_counters, 0005), except whole-population Core
        Web Vitals quantiles by the hour (rum_vitals_hourly, true quantiles); days from the
        daily rollups (0004).

        A metric the journey page charts (`CHART_METRICS`) is answered with the other charted
        metrics of the same source: the page asks for them together, and over the same rows a
        few more sums cost little next to a query each. The entry holds every one of them.
        Misses of the same shape for different journeys at the same time share one query
        (`journeylens.api.coalesce`); each journey keeps its own entry.
        """
        seconds = RESOLUTION_SECONDS[resolution]
        if resolution in ("1m", "5m"):
            # windows start on the minute: these bounds select exactly the windows of the range
            start, end = ceil_to(window.start, WINDOW_S), ceil_to(window.end, WINDOW_S)
        else:
            # whole buckets: the one holding ``from`` up to the one holding ``to``
            start, end = floor_to(window.start, seconds), ceil_to(window.end, seconds)
        params: dict[str, Any] = {
            "step": step,
            "dimension": dimension,
            "segment": segment,
            "seconds": seconds,
            "from": sql_time(start),
            "to": sql_time(end),
        }
        source = series_source(metric, dimension, resolution)
        # the other charted metrics are worth computing only when the answer is kept
        together = metrics_together(metric, dimension, resolution)
        if not self.cache.enabled:
            together = (metric,)
        names = tuple(m.name for m in together)
        sql = _series_sql(source, together)
        # everything but the journey: concurrent misses of one shape share a query
        shape = (source, names, step, dimension, segment, seconds, start, end)

        def fetch(journeys: Sequence[str]) -> dict[str, SeriesSet]:
            rows = self.db.rows(sql, {**params, "journeys": list(journeys)}, SMALL_READ)
            return _series_sets(source, names, rows)

        def compute() -> SeriesSet:
            return self.batches.get(shape, journey, fetch, _series_set(source, names, []))

        return ("timeseries", journey, *shape), compute

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


def series_source(metric: Metric, dimension: str, resolution: Resolution) -> str:
    """The table a timeseries of ``metric`` is read from at ``resolution``."""
    if resolution == "1m":
        return "journey_aggregates"
    vitals = metric.vital is not None and dimension == "all"
    if resolution == "5m" or (resolution == "1h" and not vitals):
        return "journey_window_counters"
    if resolution == "1h":
        return "rum_vitals_hourly"
    return "rum_vitals_daily" if vitals else "journey_rollup_daily"


# Sources whose rows are windows: a metric is a formula over sums of their columns, so more
# metrics in one query only add columns to the same rows. The rollups merge aggregate states
# per metric family (t-digests, maxMap groups): there every metric costs about a query.
_WINDOW_ROWS = frozenset({"journey_aggregates", "journey_window_counters"})


def metrics_together(metric: Metric, dimension: str, resolution: Resolution) -> tuple[Metric, ...]:
    """The metrics one query answers with ``metric``: the charted metrics (`CHART_METRICS`)
    of the same window-row source, or ``metric`` alone."""
    source = series_source(metric, dimension, resolution)
    if metric.name not in CHART_METRICS or source not in _WINDOW_ROWS:
        return (metric,)
    return tuple(
        METRICS[name]
        for name in CHART_METRICS
        if series_source(METRICS[name], dimension, resolution) == source
    )


def _series_sql(source: str, metrics: Sequence[Metric]) -> str:
    """``SELECT journey, bucket AS t, <metric 0> AS v0, <metric 1> AS v1, ...`` from ``source``,
    for the journeys of ``{journeys:Array(String)}``, ordered by journey and time."""
    if source == "journey_aggregates":
        return _windows_sql(metrics)
    if source == "journey_window_counters":
        return _counters_sql(metrics)
    if source == "journey_rollup_daily":
        return _rollup_sql(metrics, "daily")
    [metric] = metrics
    return _vitals_sql(metric, source.removeprefix("rum_vitals_"))


def _formula_select(metrics: Sequence[Metric]) -> str:
    formulas = ", ".join(f"{metric.formula} AS v{i}" for i, metric in enumerate(metrics))
    return f"journey, bucket AS t, {formulas}"


def _uses(metrics: Sequence[Metric]) -> list[str]:
    return sorted({name for metric in metrics for name in metric.uses})


def _windows_sql(metrics: Sequence[Metric]) -> str:
    return f"""
        SELECT {_formula_select(metrics)}
        FROM
        (
            SELECT journey,
                   toStartOfInterval(window_start, toIntervalSecond({{seconds:UInt32}}), 'UTC')
                       AS bucket,
                   {_sum_columns(_uses(metrics))}
            FROM journey_aggregates FINAL
            WHERE journey IN {{journeys:Array(String)}} AND step = {{step:String}}
              AND segment_dimension = {{dimension:String}}
              AND segment_value = {{segment:String}}
              AND {RANGE}
            GROUP BY journey, bucket
        )
        ORDER BY journey, t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def _counters_sql(metrics: Sequence[Metric]) -> str:
    """Buckets of summed per-window counters (journey_window_counters, migration 0005)."""
    sums = ", ".join(f"sum({name}) AS s_{name}" for name in _uses(metrics))
    return f"""
        SELECT {_formula_select(metrics)}
        FROM
        (
            SELECT journey,
                   toStartOfInterval(window_start, toIntervalSecond({{seconds:UInt32}}), 'UTC')
                       AS bucket,
                   {sums}
            FROM journey_window_counters FINAL
            WHERE journey IN {{journeys:Array(String)}} AND step = {{step:String}}
              AND segment_dimension = {{dimension:String}}
              AND segment_value = {{segment:String}}
              AND {RANGE}
            GROUP BY journey, bucket
        )
        ORDER BY journey, t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def _rollup_sql(metrics: Sequence[Metric], table: str) -> str:
    uses = _uses(metrics)
    states = sorted({SUMS[n].rollup for n in uses})
    merged = ", ".join(f"maxMapMerge({state}) AS m_{state}" for state in states)
    sums = ", ".join(
        f"arraySum(tupleElement(m_{SUMS[n].rollup}, {SUMS[n].index})) AS s_{n}" for n in uses
    )
    return f"""
        SELECT {_formula_select(metrics)}
        FROM
        (
            SELECT journey, bucket, {sums}
            FROM
            (
                SELECT journey, bucket, {merged}
                FROM journey_rollup_{table}
                WHERE journey IN {{journeys:Array(String)}} AND step = {{step:String}}
                  AND segment_dimension = {{dimension:String}}
                  AND segment_value = {{segment:String}}
                  AND bucket >= toStartOfInterval(
                      toDateTime({{from:DateTime64(3, 'UTC')}}, 'UTC'),
                      toIntervalSecond({{seconds:UInt32}}), 'UTC')
                  AND bucket < {{to:DateTime64(3, 'UTC')}}
                GROUP BY journey, bucket
            )
        )
        ORDER BY journey, t
    """  # noqa: S608 - constant fragments only; values are bound parameters


def _vitals_sql(metric: Metric, table: str) -> str:
    assert metric.vital is not None and metric.quantile is not None
    return f"""
        SELECT journey, bucket AS t, if(isNaN(q), NULL, q) AS v0
        FROM
        (
            SELECT journey, bucket,
                   quantilesTDigestMerge(0.5, 0.75, 0.95)({metric.vital})[{metric.quantile}] AS q
            FROM rum_vitals_{table}
            WHERE journey IN {{journeys:Array(String)}} AND step = {{step:String}}
              AND bucket >= toStartOfInterval(
                  toDateTime({{from:DateTime64(3, 'UTC')}}, 'UTC'),
                  toIntervalSecond({{seconds:UInt32}}), 'UTC')
              AND bucket < {{to:DateTime64(3, 'UTC')}}
            GROUP BY journey, bucket
        )
        ORDER BY journey, t
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
