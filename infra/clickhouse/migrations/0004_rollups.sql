-- Read side of the API: hourly and daily rollups, so 30-day and 400-day ranges stay fast.
--
-- Two families, both AggregatingMergeTree fed by materialized views (MVs see every insert):
--
-- 1. journey_rollup_hourly / journey_rollup_daily, from journey_aggregates (every journey x step
--    x segment, the counters the API needs for every metric).
--    Replays: journey_aggregates is a ReplacingMergeTree, so a re-emitted window (same
--    aggregate_id) is replaced in the table, but the MV sees it a second time. A sumState
--    rollup would count it twice. Instead each rollup row keeps maxMapState keyed by the
--    window's position in the bucket (minute of the hour, minute of the day): a replayed
--    window lands on the same key and max() keeps one copy, so
--    arraySum(maxMapMerge(state).2) is the exact sum over distinct windows, replays or not.
--    A window is one key, the state holds at most 60 (1440) entries per bucket, and merges are
--    plain element-wise max. Caveat: a re-emission with *different* counters keeps the larger
--    value per counter (the raw table keeps the latest); the processor only re-emits identical
--    windows (deterministic processing), so both agree.
--    Quantiles are not additive: the rollup keeps count-weighted sums of the per-window
--    quantiles (p * count), read back as count-weighted means (an approximation of the true
--    bucket quantile, the same one the API uses for 5-minute buckets of raw windows).
--    The counters are kept in four maxMap states (one state per counter would need ~10x the
--    memory per insert; four groups keep reads small); element N of maxMapMerge(<state>):
--      c_rum: 2 page_views, 3 sampled_views, 4 sessions, 5 views_with_error, 6 js_errors, 7
--        api_errors, 8 satisfied, 9 tolerating, 10 frustrated, 11 conversions
--      c_flow: 2 synthetic_runs, 3 synthetic_failures, 4 funnel_entered, 5 funnel_completed
--      c_counts: 2 lcp_count, 3 inp_count, 4 cls_count, 5 fcp_count, 6 ttfb_count, 7
--        duration_count, 8 synthetic_duration_count
--      w_values: 2 conversion_value, 3 lcp_p50w, 4 lcp_p75w, 5 lcp_p95w, 6 inp_p50w, 7
--        inp_p75w, 8 inp_p95w, 9 cls_p50w, 10 cls_p75w, 11 cls_p95w, 12 fcp_p50w, 13 fcp_p75w,
--        14 fcp_p95w, 15 ttfb_p50w, 16 ttfb_p75w, 17 ttfb_p95w, 18 duration_p50w, 19
--        duration_p75w, 20 duration_p95w, 21 synthetic_duration_p50w, 22
--        synthetic_duration_p75w, 23 synthetic_duration_p95w
--    (w_values holds p * count of each window quantile as Float64; element 1 is the keys.)
--
-- 2. rum_vitals_hourly / rum_vitals_daily, from rum_events (real users only: synthetic = 0):
--    true bucket quantiles of the Core Web Vitals from the raw beacons
--    (quantilesTDigestState), per journey x step and for the whole journey (step '_journey'),
--    segment 'all' only (segments are bounded top-N in the aggregates; raw context values are
--    not). A replayed raw event is counted twice until the replay is merged away; quantiles
--    are invariant when a whole batch is replayed (every value doubled), and a partial replay
--    only shifts them by the duplicated values' weight. Counts are never read from this table.
--
-- The API reads: raw windows up to 6 h, 5-minute buckets of raw windows up to 48 h, the
-- hourly rollups up to 60 days, the daily rollups beyond. The current (open) hour and day are
-- in the rollups as far as they have been inserted, and the keyed states make late windows
-- land in the right place. Existing data is not backfilled (forward-only, new data only):
-- run INSERT INTO ... SELECT from the raw tables once if older data must be rolled up.

CREATE TABLE IF NOT EXISTS {database}.journey_rollup_hourly
(
    journey LowCardinality(String),
    step LowCardinality(String),
    segment_dimension LowCardinality(String),
    segment_value LowCardinality(String),
    bucket DateTime('UTC'),
    c_rum AggregateFunction(maxMap, Array(UInt16), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64)),
    c_flow AggregateFunction(maxMap, Array(UInt16), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64)),
    c_counts AggregateFunction(maxMap, Array(UInt16), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64), Array(UInt64)),
    w_values AggregateFunction(maxMap, Array(UInt16), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64), Array(Float64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (journey, step, segment_dimension, segment_value, bucket)
TTL bucket + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS {database}.journey_rollup_daily AS {database}.journey_rollup_hourly
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (journey, step, segment_dimension, segment_value, bucket)
TTL bucket + INTERVAL 800 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.journey_rollup_hourly_mv
TO {database}.journey_rollup_hourly AS
WITH
    toStartOfHour(toDateTime(window_start, 'UTC')) AS bucket,
    toUInt16(dateDiff('minute', bucket, toDateTime(window_start, 'UTC'))) AS minute
SELECT
    journey,
    step,
    segment_dimension,
    segment_value,
    bucket,
    maxMapState([minute], [rum_page_views], [rum_sampled_views], [rum_sessions], [rum_views_with_error], [rum_js_errors], [rum_api_errors], [rum_satisfied], [rum_tolerating], [rum_frustrated], [rum_conversions]) AS c_rum,
    maxMapState([minute], [synthetic_runs], [synthetic_failures], [funnel_sessions_entered], [funnel_sessions_completed]) AS c_flow,
    maxMapState([minute], [rum_lcp_ms_count], [rum_inp_ms_count], [rum_cls_count], [rum_fcp_ms_count], [rum_ttfb_ms_count], [rum_duration_ms_count], [synthetic_duration_ms_count]) AS c_counts,
    maxMapState([minute], [toFloat64(rum_conversion_value)], [toFloat64(ifNull(rum_lcp_ms_p50, 0) * rum_lcp_ms_count)], [toFloat64(ifNull(rum_lcp_ms_p75, 0) * rum_lcp_ms_count)], [toFloat64(ifNull(rum_lcp_ms_p95, 0) * rum_lcp_ms_count)], [toFloat64(ifNull(rum_inp_ms_p50, 0) * rum_inp_ms_count)], [toFloat64(ifNull(rum_inp_ms_p75, 0) * rum_inp_ms_count)], [toFloat64(ifNull(rum_inp_ms_p95, 0) * rum_inp_ms_count)], [toFloat64(ifNull(rum_cls_p50, 0) * rum_cls_count)], [toFloat64(ifNull(rum_cls_p75, 0) * rum_cls_count)], [toFloat64(ifNull(rum_cls_p95, 0) * rum_cls_count)], [toFloat64(ifNull(rum_fcp_ms_p50, 0) * rum_fcp_ms_count)], [toFloat64(ifNull(rum_fcp_ms_p75, 0) * rum_fcp_ms_count)], [toFloat64(ifNull(rum_fcp_ms_p95, 0) * rum_fcp_ms_count)], [toFloat64(ifNull(rum_ttfb_ms_p50, 0) * rum_ttfb_ms_count)], [toFloat64(ifNull(rum_ttfb_ms_p75, 0) * rum_ttfb_ms_count)], [toFloat64(ifNull(rum_ttfb_ms_p95, 0) * rum_ttfb_ms_count)], [toFloat64(ifNull(rum_duration_ms_p50, 0) * rum_duration_ms_count)], [toFloat64(ifNull(rum_duration_ms_p75, 0) * rum_duration_ms_count)], [toFloat64(ifNull(rum_duration_ms_p95, 0) * rum_duration_ms_count)], [toFloat64(ifNull(synthetic_duration_ms_p50, 0) * synthetic_duration_ms_count)], [toFloat64(ifNull(synthetic_duration_ms_p75, 0) * synthetic_duration_ms_count)], [toFloat64(ifNull(synthetic_duration_ms_p95, 0) * synthetic_duration_ms_count)]) AS w_values
FROM {database}.journey_aggregates
GROUP BY journey, step, segment_dimension, segment_value, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.journey_rollup_daily_mv
TO {database}.journey_rollup_daily AS
WITH
    toDateTime(toStartOfDay(toDateTime(window_start, 'UTC')), 'UTC') AS bucket,
    toUInt16(dateDiff('minute', bucket, toDateTime(window_start, 'UTC'))) AS minute
SELECT
    journey,
    step,
    segment_dimension,
    segment_value,
    bucket,
    maxMapState([minute], [rum_page_views], [rum_sampled_views], [rum_sessions], [rum_views_with_error], [rum_js_errors], [rum_api_errors], [rum_satisfied], [rum_tolerating], [rum_frustrated], [rum_conversions]) AS c_rum,
    maxMapState([minute], [synthetic_runs], [synthetic_failures], [funnel_sessions_entered], [funnel_sessions_completed]) AS c_flow,
    maxMapState([minute], [rum_lcp_ms_count], [rum_inp_ms_count], [rum_cls_count], [rum_fcp_ms_count], [rum_ttfb_ms_count], [rum_duration_ms_count], [synthetic_duration_ms_count]) AS c_counts,
    maxMapState([minute], [toFloat64(rum_conversion_value)], [toFloat64(ifNull(rum_lcp_ms_p50, 0) * rum_lcp_ms_count)], [toFloat64(ifNull(rum_lcp_ms_p75, 0) * rum_lcp_ms_count)], [toFloat64(ifNull(rum_lcp_ms_p95, 0) * rum_lcp_ms_count)], [toFloat64(ifNull(rum_inp_ms_p50, 0) * rum_inp_ms_count)], [toFloat64(ifNull(rum_inp_ms_p75, 0) * rum_inp_ms_count)], [toFloat64(ifNull(rum_inp_ms_p95, 0) * rum_inp_ms_count)], [toFloat64(ifNull(rum_cls_p50, 0) * rum_cls_count)], [toFloat64(ifNull(rum_cls_p75, 0) * rum_cls_count)], [toFloat64(ifNull(rum_cls_p95, 0) * rum_cls_count)], [toFloat64(ifNull(rum_fcp_ms_p50, 0) * rum_fcp_ms_count)], [toFloat64(ifNull(rum_fcp_ms_p75, 0) * rum_fcp_ms_count)], [toFloat64(ifNull(rum_fcp_ms_p95, 0) * rum_fcp_ms_count)], [toFloat64(ifNull(rum_ttfb_ms_p50, 0) * rum_ttfb_ms_count)], [toFloat64(ifNull(rum_ttfb_ms_p75, 0) * rum_ttfb_ms_count)], [toFloat64(ifNull(rum_ttfb_ms_p95, 0) * rum_ttfb_ms_count)], [toFloat64(ifNull(rum_duration_ms_p50, 0) * rum_duration_ms_count)], [toFloat64(ifNull(rum_duration_ms_p75, 0) * rum_duration_ms_count)], [toFloat64(ifNull(rum_duration_ms_p95, 0) * rum_duration_ms_count)], [toFloat64(ifNull(synthetic_duration_ms_p50, 0) * synthetic_duration_ms_count)], [toFloat64(ifNull(synthetic_duration_ms_p75, 0) * synthetic_duration_ms_count)], [toFloat64(ifNull(synthetic_duration_ms_p95, 0) * synthetic_duration_ms_count)]) AS w_values
FROM {database}.journey_aggregates
GROUP BY journey, step, segment_dimension, segment_value, bucket;

CREATE TABLE IF NOT EXISTS {database}.rum_vitals_hourly
(
    journey LowCardinality(String),
    step LowCardinality(String),
    bucket DateTime('UTC'),
    lcp_ms AggregateFunction(quantilesTDigest(0.5, 0.75, 0.95), Nullable(Float64)),
    inp_ms AggregateFunction(quantilesTDigest(0.5, 0.75, 0.95), Nullable(Float64)),
    cls AggregateFunction(quantilesTDigest(0.5, 0.75, 0.95), Nullable(Float64)),
    fcp_ms AggregateFunction(quantilesTDigest(0.5, 0.75, 0.95), Nullable(Float64)),
    ttfb_ms AggregateFunction(quantilesTDigest(0.5, 0.75, 0.95), Nullable(Float64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (journey, step, bucket)
TTL bucket + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS {database}.rum_vitals_daily AS {database}.rum_vitals_hourly
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (journey, step, bucket)
TTL bucket + INTERVAL 800 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.rum_vitals_hourly_mv
TO {database}.rum_vitals_hourly AS
SELECT
    journey,
    arrayJoin([step, '_journey']) AS step,
    toStartOfHour(toDateTime(timestamp, 'UTC')) AS bucket,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_lcp_ms) AS lcp_ms,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_inp_ms) AS inp_ms,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_cls) AS cls,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_fcp_ms) AS fcp_ms,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_ttfb_ms) AS ttfb_ms
FROM {database}.rum_events
WHERE NOT synthetic AND journey != '' AND journey != '_unmapped' AND step != ''
GROUP BY journey, step, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.rum_vitals_daily_mv
TO {database}.rum_vitals_daily AS
SELECT
    journey,
    arrayJoin([step, '_journey']) AS step,
    toDateTime(toStartOfDay(toDateTime(timestamp, 'UTC')), 'UTC') AS bucket,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_lcp_ms) AS lcp_ms,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_inp_ms) AS inp_ms,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_cls) AS cls,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_fcp_ms) AS fcp_ms,
    quantilesTDigestState(0.5, 0.75, 0.95)(vitals_ttfb_ms) AS ttfb_ms
FROM {database}.rum_events
WHERE NOT synthetic AND journey != '' AND journey != '_unmapped' AND step != ''
GROUP BY journey, step, bucket;
