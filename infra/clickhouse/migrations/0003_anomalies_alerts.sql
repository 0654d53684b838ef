-- experience.anomalies.v1 and experience.alerts.v1, kept 400 days, partitioned by month.

CREATE TABLE IF NOT EXISTS {database}.anomalies
(
    anomaly_id String,
    journey LowCardinality(String),
    step LowCardinality(String),
    metric LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    value Float64,
    threshold Nullable(Float64),
    baseline Nullable(Float64),
    band_low Nullable(Float64),
    band_high Nullable(Float64),
    direction LowCardinality(String),
    violating_windows UInt16,
    of_windows UInt16,
    scope LowCardinality(String),
    segment_dimension LowCardinality(Nullable(String)),
    segment_value LowCardinality(Nullable(String)),
    dependency LowCardinality(Nullable(String)),
    detected_at DateTime64(3, 'UTC'),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (journey, step, window_start, metric, anomaly_id)
TTL toDateTime(window_start) + INTERVAL 400 DAY;

-- One row per alert lifecycle event (a CloudEvents envelope): every firing update and the
-- resolution of an incident. The envelope fields keep their CloudEvents names (id, type,
-- source, subject, time, ...); the fields of `data` are stored unprefixed (fingerprint,
-- incident_id, status, ...), its nested objects flattened as impact_*, evidence_*.
-- The current state of an incident: argMax(<column>, time) GROUP BY incident_id.
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    id String,
    specversion LowCardinality(String),
    source LowCardinality(String),
    type LowCardinality(String),
    subject LowCardinality(String),
    time DateTime64(3, 'UTC'),
    datacontenttype LowCardinality(String),
    dataschema LowCardinality(String),
    fingerprint String,
    incident_id String,
    status LowCardinality(String),
    severity LowCardinality(String),
    journey LowCardinality(String),
    journey_name LowCardinality(String),
    category LowCardinality(String),
    scope LowCardinality(String),
    title String,
    summary String,
    started_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    signals Nested
    (
        kind LowCardinality(String),
        step LowCardinality(String),
        metric LowCardinality(String),
        value Float64,
        threshold Nullable(Float64),
        baseline Nullable(Float64),
        window_start DateTime64(3, 'UTC'),
        detail Nullable(String)
    ),
    impact_sessions_affected UInt64,
    impact_conversion_rate_baseline Nullable(Float64),
    impact_conversion_rate_current Nullable(Float64),
    impact_conversion_drop Nullable(Float64),
    impact_lost_completions Float64,
    impact_revenue_at_risk Float64,
    impact_currency LowCardinality(String),
    evidence_suspected_step LowCardinality(Nullable(String)),
    evidence_suspected_dependency LowCardinality(Nullable(String)),
    evidence_segment_dimension LowCardinality(Nullable(String)),
    evidence_segment_value LowCardinality(Nullable(String)),
    evidence_failing_locations Array(String),
    evidence_failed_assertions Array(String),
    evidence_probe_run_ids Array(String),
    labels Map(LowCardinality(String), String),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(time)
ORDER BY (journey, time, incident_id, id)
TTL toDateTime(time) + INTERVAL 400 DAY;
