-- rum_vitals_daily is fed from rum_vitals_hourly instead of from every raw event.
--
-- 0004's rum_vitals_daily_mv read each rum_events insert block a second time and added every
-- beacon's five vitals to a second set of t-digests (twice: per step and for '_journey'):
-- about 0.4 us of server CPU per stored RUM event (its query alone, one thread, over 400k
-- bench events), a few per cent of what storing the event costs. The hourly view already
-- computes those t-digests per journey x step x hour; the daily view now merges each inserted
-- block of hourly states by day (quantilesTDigestMergeState), a few rows per insert instead of
-- one per event. A day's state is the merge of its hours' states: the same events, its
-- quantiles as approximate as before (a t-digest merge, like the merges of parts, is not exact).
--
-- Replays behave as before (the hourly states count a replayed event twice until the replay is
-- merged away, and the daily states merge those). Rows already in rum_vitals_daily stay. The
-- new view is created before the old one is dropped: an insert running between the two
-- statements is counted twice in the daily table (like a replay), never missed.

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.rum_vitals_daily_from_hourly_mv
TO {database}.rum_vitals_daily AS
SELECT
    journey,
    step,
    toDateTime(toStartOfDay(bucket), 'UTC') AS bucket,
    quantilesTDigestMergeState(0.5, 0.75, 0.95)(lcp_ms) AS lcp_ms,
    quantilesTDigestMergeState(0.5, 0.75, 0.95)(inp_ms) AS inp_ms,
    quantilesTDigestMergeState(0.5, 0.75, 0.95)(cls) AS cls,
    quantilesTDigestMergeState(0.5, 0.75, 0.95)(fcp_ms) AS fcp_ms,
    quantilesTDigestMergeState(0.5, 0.75, 0.95)(ttfb_ms) AS ttfb_ms
FROM {database}.rum_vitals_hourly
GROUP BY journey, step, bucket;

DROP VIEW IF EXISTS {database}.rum_vitals_daily_mv;
