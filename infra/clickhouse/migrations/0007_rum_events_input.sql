-- Raw RUM events parsed once by the server's JSONEachRow reader (replaces 0006's path).
--
-- The worker writes each rum.beacons.v1 message unchanged (FORMAT JSONEachRow) into
-- rum_events_input: a Null table whose columns are the message's fields, nested objects as
-- named tuples and lists of objects as arrays of named tuples. The format reader parses each
-- message straight into those columns (about half the server CPU of 0006's JSONAsString +
-- JSONExtract), and the view flattens them into rum_events with the naming of
-- 0001_raw_events.sql, exactly as 0006's view does (same expressions, the same row).
--
-- Types are the reader's to check: a message it cannot read (a number where a string
-- belongs, say) fails the whole insert, so the worker then stores that batch through 0006's
-- lenient landing table (JSONExtract takes a mismatched field as its default), losing nothing.
-- Times stay strings here and are parsed best-effort as UTC by the view, as in 0006.
-- A column added to rum_events later must be added here and to both views (a test compares
-- every column and both paths: tests/unit/processor/test_raw_rum_sink.py).

CREATE TABLE IF NOT EXISTS {database}.rum_events_input
(
    event_id String,
    kind String,
    source String,
    timestamp String,
    received_at String,
    app String,
    journey String,
    step String,
    session_id String,
    page_id String,
    url String,
    path String,
    navigation_type String,
    vitals Tuple(lcp_ms Nullable(Float64), inp_ms Nullable(Float64), cls Nullable(Float64),
        fcp_ms Nullable(Float64), ttfb_ms Nullable(Float64)),
    navigation Tuple(redirect_ms Nullable(Float64), dns_ms Nullable(Float64),
        connect_ms Nullable(Float64), tls_ms Nullable(Float64), request_ms Nullable(Float64),
        response_ms Nullable(Float64), dom_interactive_ms Nullable(Float64),
        dom_content_loaded_ms Nullable(Float64), load_event_ms Nullable(Float64),
        duration_ms Nullable(Float64)),
    errors Array(Tuple(message String, type Nullable(String), source Nullable(String),
        line Nullable(Int32), column Nullable(Int32), stack Nullable(String), count UInt32)),
    api_errors Array(Tuple(url String, method String, status UInt16,
        duration_ms Nullable(Float64), host Nullable(String))),
    dependencies Array(Tuple(host String, provider Nullable(String), requests UInt32,
        failures UInt32, total_duration_ms Float64, max_duration_ms Float64,
        transfer_bytes UInt64)),
    network_error Tuple(type Nullable(String), phase Nullable(String),
        status_code Nullable(UInt16), elapsed_ms Nullable(Float64),
        server_ip_present Nullable(Bool), protocol Nullable(String), method Nullable(String),
        sampling_fraction Nullable(Float64)),
    context Tuple(device_class String, browser String, browser_version Nullable(String),
        os String, os_version Nullable(String), connection_type String,
        rtt_ms Nullable(Float64), downlink_mbps Nullable(Float64), country String),
    synthetic Bool,
    probe_run_id Nullable(String),
    sample_rate Float64,
    step_event Nullable(String),
    conversion_value Nullable(Float64),
    currency Nullable(String),
    user_agent Nullable(String),
    schema_version UInt8
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.rum_events_input_mv
TO {database}.rum_events
AS
SELECT
    m.event_id AS event_id,
    m.kind AS kind,
    m.source AS source,
    parseDateTime64BestEffortOrZero(m.timestamp, 3, 'UTC') AS timestamp,
    parseDateTime64BestEffortOrZero(m.received_at, 3, 'UTC') AS received_at,
    m.app AS app,
    m.journey AS journey,
    m.step AS step,
    m.session_id AS session_id,
    m.page_id AS page_id,
    m.url AS url,
    m.path AS path,
    m.navigation_type AS navigation_type,
    m.vitals.lcp_ms AS vitals_lcp_ms,
    m.vitals.inp_ms AS vitals_inp_ms,
    m.vitals.cls AS vitals_cls,
    m.vitals.fcp_ms AS vitals_fcp_ms,
    m.vitals.ttfb_ms AS vitals_ttfb_ms,
    m.navigation.redirect_ms AS navigation_redirect_ms,
    m.navigation.dns_ms AS navigation_dns_ms,
    m.navigation.connect_ms AS navigation_connect_ms,
    m.navigation.tls_ms AS navigation_tls_ms,
    m.navigation.request_ms AS navigation_request_ms,
    m.navigation.response_ms AS navigation_response_ms,
    m.navigation.dom_interactive_ms AS navigation_dom_interactive_ms,
    m.navigation.dom_content_loaded_ms AS navigation_dom_content_loaded_ms,
    m.navigation.load_event_ms AS navigation_load_event_ms,
    m.navigation.duration_ms AS navigation_duration_ms,
    arrayMap(e -> e.message, m.errors) AS `errors.message`,
    arrayMap(e -> e.type, m.errors) AS `errors.type`,
    arrayMap(e -> e.source, m.errors) AS `errors.source`,
    arrayMap(e -> e.line, m.errors) AS `errors.line`,
    arrayMap(e -> e.column, m.errors) AS `errors.column`,
    arrayMap(e -> e.stack, m.errors) AS `errors.stack`,
    arrayMap(e -> e.count, m.errors) AS `errors.count`,
    arrayMap(e -> e.url, m.api_errors) AS `api_errors.url`,
    arrayMap(e -> e.method, m.api_errors) AS `api_errors.method`,
    arrayMap(e -> e.status, m.api_errors) AS `api_errors.status`,
    arrayMap(e -> e.duration_ms, m.api_errors) AS `api_errors.duration_ms`,
    arrayMap(e -> e.host, m.api_errors) AS `api_errors.host`,
    arrayMap(d -> d.host, m.dependencies) AS `dependencies.host`,
    arrayMap(d -> d.provider, m.dependencies) AS `dependencies.provider`,
    arrayMap(d -> d.requests, m.dependencies) AS `dependencies.requests`,
    arrayMap(d -> d.failures, m.dependencies) AS `dependencies.failures`,
    arrayMap(d -> d.total_duration_ms, m.dependencies) AS `dependencies.total_duration_ms`,
    arrayMap(d -> d.max_duration_ms, m.dependencies) AS `dependencies.max_duration_ms`,
    arrayMap(d -> d.transfer_bytes, m.dependencies) AS `dependencies.transfer_bytes`,
    m.network_error.type AS network_error_type,
    m.network_error.phase AS network_error_phase,
    m.network_error.status_code AS network_error_status_code,
    m.network_error.elapsed_ms AS network_error_elapsed_ms,
    m.network_error.server_ip_present AS network_error_server_ip_present,
    m.network_error.protocol AS network_error_protocol,
    m.network_error.method AS network_error_method,
    m.network_error.sampling_fraction AS network_error_sampling_fraction,
    m.context.device_class AS context_device_class,
    m.context.browser AS context_browser,
    m.context.browser_version AS context_browser_version,
    m.context.os AS context_os,
    m.context.os_version AS context_os_version,
    m.context.connection_type AS context_connection_type,
    m.context.rtt_ms AS context_rtt_ms,
    m.context.downlink_mbps AS context_downlink_mbps,
    m.context.country AS context_country,
    m.synthetic AS synthetic,
    m.probe_run_id AS probe_run_id,
    m.sample_rate AS sample_rate,
    m.step_event AS step_event,
    m.conversion_value AS conversion_value,
    m.currency AS currency,
    m.user_agent AS user_agent,
    m.schema_version AS schema_version
FROM {database}.rum_events_input AS m;
