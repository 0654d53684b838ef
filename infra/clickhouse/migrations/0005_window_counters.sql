-- Per-window counters for the API's hourly timeseries: narrow, ordered by series, replay-safe.
--
-- Why: an hourly series over 30 days read from journey_rollup_hourly (0004) merges 720
-- maxMap states of up to 60 keys x 11 arrays per request (~100 ms for one counter metric on
-- 1M aggregate rows, several hundred ms under 20 concurrent clients on two cores). The same
-- sums read from this table are ~7 ms: one narrow row per window, only the columns a metric
-- uses, and the rows of one series (journey x step x segment) are contiguous in the sort key.
--
-- What: one row per journey x step x window x segment with the additive counters of
-- journey_aggregates, named as the API's sums (journeylens.api.metrics.SUMS): plain counters,
-- the per-metric counts, and the count-weighted quantiles (p * count, Float64; read back as
-- sum(p * count) / sum(count), the same approximation the rollups and 5-minute buckets use).
-- Hourly sums are computed at read time: sum(...) GROUP BY toStartOfHour(window_start).
--
-- Replays: the sort key is the window's identity (aggregate_id is derived from the same
-- fields), and the engine is a ReplacingMergeTree versioned like the source, so a re-emitted
-- window replaces the earlier row; the API reads with FINAL. A re-emitted window with
-- different counters keeps the latest, exactly as journey_aggregates FINAL does.
--
-- Backfill: the last statement copies the existing aggregates once. It runs after the MV
-- exists, so a window inserted meanwhile may be written twice: the same key, replaced.
-- Re-running this file is therefore harmless too.
--
-- The API reads: this table for 5-minute and hourly buckets (ranges over 6 h up to 60 days);
-- journey_aggregates for 1-minute windows (as emitted); journey_rollup_daily beyond 60 days;
-- rum_vitals_* for whole-population Core Web Vitals quantiles by the hour and the day.

CREATE TABLE IF NOT EXISTS {database}.journey_window_counters
(
    journey LowCardinality(String),
    step LowCardinality(String),
    segment_dimension LowCardinality(String),
    segment_value LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    page_views UInt64,
    sampled_views UInt64,
    sessions UInt64,
    views_with_error UInt64,
    js_errors UInt64,
    api_errors UInt64,
    satisfied UInt64,
    tolerating UInt64,
    frustrated UInt64,
    conversions UInt64,
    synthetic_runs UInt64,
    synthetic_failures UInt64,
    funnel_entered UInt64,
    funnel_completed UInt64,
    lcp_count UInt64,
    inp_count UInt64,
    cls_count UInt64,
    fcp_count UInt64,
    ttfb_count UInt64,
    duration_count UInt64,
    synthetic_duration_count UInt64,
    conversion_value Float64,
    lcp_p50w Float64,
    lcp_p75w Float64,
    lcp_p95w Float64,
    inp_p50w Float64,
    inp_p75w Float64,
    inp_p95w Float64,
    cls_p50w Float64,
    cls_p75w Float64,
    cls_p95w Float64,
    fcp_p50w Float64,
    fcp_p75w Float64,
    fcp_p95w Float64,
    ttfb_p50w Float64,
    ttfb_p75w Float64,
    ttfb_p95w Float64,
    duration_p50w Float64,
    duration_p75w Float64,
    duration_p95w Float64,
    synthetic_duration_p50w Float64,
    synthetic_duration_p75w Float64,
    synthetic_duration_p95w Float64,
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (journey, step, segment_dimension, segment_value, window_start)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.journey_window_counters_mv
TO {database}.journey_window_counters AS
SELECT
    journey,
    step,
    segment_dimension,
    segment_value,
    window_start,
    rum_page_views AS page_views,
    rum_sampled_views AS sampled_views,
    rum_sessions AS sessions,
    rum_views_with_error AS views_with_error,
    rum_js_errors AS js_errors,
    rum_api_errors AS api_errors,
    rum_satisfied AS satisfied,
    rum_tolerating AS tolerating,
    rum_frustrated AS frustrated,
    rum_conversions AS conversions,
    synthetic_runs,
    synthetic_failures,
    funnel_sessions_entered AS funnel_entered,
    funnel_sessions_completed AS funnel_completed,
    rum_lcp_ms_count AS lcp_count,
    rum_inp_ms_count AS inp_count,
    rum_cls_count AS cls_count,
    rum_fcp_ms_count AS fcp_count,
    rum_ttfb_ms_count AS ttfb_count,
    rum_duration_ms_count AS duration_count,
    synthetic_duration_ms_count AS synthetic_duration_count,
    toFloat64(rum_conversion_value) AS conversion_value,
    toFloat64(ifNull(rum_lcp_ms_p50, 0) * rum_lcp_ms_count) AS lcp_p50w,
    toFloat64(ifNull(rum_lcp_ms_p75, 0) * rum_lcp_ms_count) AS lcp_p75w,
    toFloat64(ifNull(rum_lcp_ms_p95, 0) * rum_lcp_ms_count) AS lcp_p95w,
    toFloat64(ifNull(rum_inp_ms_p50, 0) * rum_inp_ms_count) AS inp_p50w,
    toFloat64(ifNull(rum_inp_ms_p75, 0) * rum_inp_ms_count) AS inp_p75w,
    toFloat64(ifNull(rum_inp_ms_p95, 0) * rum_inp_ms_count) AS inp_p95w,
    toFloat64(ifNull(rum_cls_p50, 0) * rum_cls_count) AS cls_p50w,
    toFloat64(ifNull(rum_cls_p75, 0) * rum_cls_count) AS cls_p75w,
    toFloat64(ifNull(rum_cls_p95, 0) * rum_cls_count) AS cls_p95w,
    toFloat64(ifNull(rum_fcp_ms_p50, 0) * rum_fcp_ms_count) AS fcp_p50w,
    toFloat64(ifNull(rum_fcp_ms_p75, 0) * rum_fcp_ms_count) AS fcp_p75w,
    toFloat64(ifNull(rum_fcp_ms_p95, 0) * rum_fcp_ms_count) AS fcp_p95w,
    toFloat64(ifNull(rum_ttfb_ms_p50, 0) * rum_ttfb_ms_count) AS ttfb_p50w,
    toFloat64(ifNull(rum_ttfb_ms_p75, 0) * rum_ttfb_ms_count) AS ttfb_p75w,
    toFloat64(ifNull(rum_ttfb_ms_p95, 0) * rum_ttfb_ms_count) AS ttfb_p95w,
    toFloat64(ifNull(rum_duration_ms_p50, 0) * rum_duration_ms_count) AS duration_p50w,
    toFloat64(ifNull(rum_duration_ms_p75, 0) * rum_duration_ms_count) AS duration_p75w,
    toFloat64(ifNull(rum_duration_ms_p95, 0) * rum_duration_ms_count) AS duration_p95w,
    toFloat64(ifNull(synthetic_duration_ms_p50, 0) * synthetic_duration_ms_count) AS synthetic_duration_p50w,
    toFloat64(ifNull(synthetic_duration_ms_p75, 0) * synthetic_duration_ms_count) AS synthetic_duration_p75w,
    toFloat64(ifNull(synthetic_duration_ms_p95, 0) * synthetic_duration_ms_count) AS synthetic_duration_p95w,
    ingested_at
FROM {database}.journey_aggregates;

INSERT INTO {database}.journey_window_counters
SELECT
    journey,
    step,
    segment_dimension,
    segment_value,
    window_start,
    rum_page_views AS page_views,
    rum_sampled_views AS sampled_views,
    rum_sessions AS sessions,
    rum_views_with_error AS views_with_error,
    rum_js_errors AS js_errors,
    rum_api_errors AS api_errors,
    rum_satisfied AS satisfied,
    rum_tolerating AS tolerating,
    rum_frustrated AS frustrated,
    rum_conversions AS conversions,
    synthetic_runs,
    synthetic_failures,
    funnel_sessions_entered AS funnel_entered,
    funnel_sessions_completed AS funnel_completed,
    rum_lcp_ms_count AS lcp_count,
    rum_inp_ms_count AS inp_count,
    rum_cls_count AS cls_count,
    rum_fcp_ms_count AS fcp_count,
    rum_ttfb_ms_count AS ttfb_count,
    rum_duration_ms_count AS duration_count,
    synthetic_duration_ms_count AS synthetic_duration_count,
    toFloat64(rum_conversion_value) AS conversion_value,
    toFloat64(ifNull(rum_lcp_ms_p50, 0) * rum_lcp_ms_count) AS lcp_p50w,
    toFloat64(ifNull(rum_lcp_ms_p75, 0) * rum_lcp_ms_count) AS lcp_p75w,
    toFloat64(ifNull(rum_lcp_ms_p95, 0) * rum_lcp_ms_count) AS lcp_p95w,
    toFloat64(ifNull(rum_inp_ms_p50, 0) * rum_inp_ms_count) AS inp_p50w,
    toFloat64(ifNull(rum_inp_ms_p75, 0) * rum_inp_ms_count) AS inp_p75w,
    toFloat64(ifNull(rum_inp_ms_p95, 0) * rum_inp_ms_count) AS inp_p95w,
    toFloat64(ifNull(rum_cls_p50, 0) * rum_cls_count) AS cls_p50w,
    toFloat64(ifNull(rum_cls_p75, 0) * rum_cls_count) AS cls_p75w,
    toFloat64(ifNull(rum_cls_p95, 0) * rum_cls_count) AS cls_p95w,
    toFloat64(ifNull(rum_fcp_ms_p50, 0) * rum_fcp_ms_count) AS fcp_p50w,
    toFloat64(ifNull(rum_fcp_ms_p75, 0) * rum_fcp_ms_count) AS fcp_p75w,
    toFloat64(ifNull(rum_fcp_ms_p95, 0) * rum_fcp_ms_count) AS fcp_p95w,
    toFloat64(ifNull(rum_ttfb_ms_p50, 0) * rum_ttfb_ms_count) AS ttfb_p50w,
    toFloat64(ifNull(rum_ttfb_ms_p75, 0) * rum_ttfb_ms_count) AS ttfb_p75w,
    toFloat64(ifNull(rum_ttfb_ms_p95, 0) * rum_ttfb_ms_count) AS ttfb_p95w,
    toFloat64(ifNull(rum_duration_ms_p50, 0) * rum_duration_ms_count) AS duration_p50w,
    toFloat64(ifNull(rum_duration_ms_p75, 0) * rum_duration_ms_count) AS duration_p75w,
    toFloat64(ifNull(rum_duration_ms_p95, 0) * rum_duration_ms_count) AS duration_p95w,
    toFloat64(ifNull(synthetic_duration_ms_p50, 0) * synthetic_duration_ms_count) AS synthetic_duration_p50w,
    toFloat64(ifNull(synthetic_duration_ms_p75, 0) * synthetic_duration_ms_count) AS synthetic_duration_p75w,
    toFloat64(ifNull(synthetic_duration_ms_p95, 0) * synthetic_duration_ms_count) AS synthetic_duration_p95w,
    ingested_at
FROM {database}.journey_aggregates;
