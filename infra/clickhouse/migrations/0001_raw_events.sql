-- Raw events as they arrived: RUM events (rum.beacons.v1) and synthetic probe results
-- (synthetic.results.v1). Kept 30 days, partitioned by day.
--
-- Conventions of every JourneyLens table (see storage/migrations.py for the runner):
--   * {database} is filled in by the runner (journeylens in production).
--   * Column names are the contract field names; a nested object's fields are flattened as
--     <field>_<subfield> (vitals.lcp_ms -> vitals_lcp_ms, rum.lcp_ms.p75 -> rum_lcp_ms_p75);
--     lists of objects are Nested columns named after the list (errors.message, ...).
--   * Times are DateTime64(3, 'UTC'); enums and other small vocabularies are LowCardinality.
--   * Idempotent on replay: ReplacingMergeTree(ingested_at) whose ORDER BY ends with the
--     contract's deterministic id, so a replayed message replaces its earlier copy (the latest
--     insert wins). Read with FINAL (or argMax) when exact counts matter before merges.

CREATE DATABASE IF NOT EXISTS {database};

CREATE TABLE IF NOT EXISTS {database}.rum_events
(
    event_id String,
    kind LowCardinality(String),
    source LowCardinality(String),
    timestamp DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    app LowCardinality(String),
    journey LowCardinality(String),
    step LowCardinality(String),
    session_id String,
    page_id String,
    url String,
    path String,
    navigation_type LowCardinality(String),
    vitals_lcp_ms Nullable(Float64),
    vitals_inp_ms Nullable(Float64),
    vitals_cls Nullable(Float64),
    vitals_fcp_ms Nullable(Float64),
    vitals_ttfb_ms Nullable(Float64),
    navigation_redirect_ms Nullable(Float64),
    navigation_dns_ms Nullable(Float64),
    navigation_connect_ms Nullable(Float64),
    navigation_tls_ms Nullable(Float64),
    navigation_request_ms Nullable(Float64),
    navigation_response_ms Nullable(Float64),
    navigation_dom_interactive_ms Nullable(Float64),
    navigation_dom_content_loaded_ms Nullable(Float64),
    navigation_load_event_ms Nullable(Float64),
    navigation_duration_ms Nullable(Float64),
    errors Nested
    (
        message String,
        `type` Nullable(String),
        `source` Nullable(String),
        `line` Nullable(Int32),
        `column` Nullable(Int32),
        stack Nullable(String),
        `count` UInt32
    ),
    api_errors Nested
    (
        url String,
        method LowCardinality(String),
        status UInt16,
        duration_ms Nullable(Float64),
        host Nullable(String)
    ),
    -- resource timings grouped by the host that served them (CDN, APIs, third parties)
    dependencies Nested
    (
        host LowCardinality(String),
        provider LowCardinality(Nullable(String)),
        requests UInt32,
        failures UInt32,
        total_duration_ms Float64,
        max_duration_ms Float64,
        transfer_bytes UInt64
    ),
    network_error_type LowCardinality(Nullable(String)),
    network_error_phase LowCardinality(Nullable(String)),
    network_error_status_code Nullable(UInt16),
    network_error_elapsed_ms Nullable(Float64),
    network_error_server_ip_present Nullable(Bool),
    network_error_protocol LowCardinality(Nullable(String)),
    network_error_method LowCardinality(Nullable(String)),
    network_error_sampling_fraction Nullable(Float64),
    context_device_class LowCardinality(String),
    context_browser LowCardinality(String),
    context_browser_version LowCardinality(Nullable(String)),
    context_os LowCardinality(String),
    context_os_version LowCardinality(Nullable(String)),
    context_connection_type LowCardinality(String),
    context_rtt_ms Nullable(Float64),
    context_downlink_mbps Nullable(Float64),
    context_country LowCardinality(String),
    synthetic Bool,
    probe_run_id Nullable(String),
    sample_rate Float64,
    step_event Nullable(String),
    conversion_value Nullable(Float64),
    currency LowCardinality(Nullable(String)),
    user_agent Nullable(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(timestamp)
ORDER BY (journey, step, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1;

-- One row per step of a probe run, plus one row per run with step = '_journey' that carries
-- the run's own outcome (step_status = passed | failed, step_duration_ms = duration_ms), so
-- availability is WHERE step = '_journey' and step timings need no ARRAY JOIN.
-- Run fields keep their names; the step fields that share a name with a run field are
-- prefixed step_ (step_status, step_started_at, step_duration_ms, step_error,
-- step_screenshot); step_index is the step's position in the run (0 for '_journey').
CREATE TABLE IF NOT EXISTS {database}.synthetic_results
(
    run_id String,
    journey LowCardinality(String),
    location LowCardinality(String),
    status LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    duration_ms Float64,
    failed_step LowCardinality(Nullable(String)),
    error Nullable(String),
    screenshot Nullable(String),
    probe_version LowCardinality(String),
    step LowCardinality(String),
    step_index UInt16,
    kind LowCardinality(String),
    step_status LowCardinality(String),
    step_started_at DateTime64(3, 'UTC'),
    step_duration_ms Float64,
    url Nullable(String),
    method LowCardinality(Nullable(String)),
    http_status Nullable(UInt16),
    timings_dns_ms Nullable(Float64),
    timings_connect_ms Nullable(Float64),
    timings_tls_ms Nullable(Float64),
    timings_ttfb_ms Nullable(Float64),
    timings_transfer_ms Nullable(Float64),
    vitals_lcp_ms Nullable(Float64),
    vitals_inp_ms Nullable(Float64),
    vitals_cls Nullable(Float64),
    vitals_fcp_ms Nullable(Float64),
    vitals_ttfb_ms Nullable(Float64),
    failed_assertions Nested
    (
        assertion String,
        expected Nullable(String),
        actual Nullable(String),
        message String
    ),
    step_error Nullable(String),
    attempts UInt16,
    step_screenshot Nullable(String),
    schema_version UInt8,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(started_at)
ORDER BY (journey, step, started_at, location, run_id)
TTL toDateTime(started_at) + INTERVAL 30 DAY
SETTINGS ttl_only_drop_parts = 1;
