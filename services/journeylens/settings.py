"""Settings, one pydantic-settings class per concern (env prefix ``JOURNEYLENS_``).

Settings are built once at an entry point (the CLI) and passed down; no module reads
``os.environ`` itself. Secrets are ``SecretStr`` so they never show in logs or reprs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Topic(StrEnum):
    """Logical topic names used by code; settings map them to physical names."""

    RUM_BEACONS = "rum.beacons.v1"
    SYNTHETIC_RESULTS = "synthetic.results.v1"
    AGGREGATES = "experience.aggregates.v1"
    ANOMALIES = "experience.anomalies.v1"
    ALERTS = "experience.alerts.v1"
    DEADLETTER = "journeylens.deadletter.v1"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        default="", description="Prepended to every logical topic name (e.g. 'staging.')."
    )
    client_id: str = "journeylens"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def physical(self, topic: Topic) -> str:
        """The broker-side name of a logical topic."""
        return f"{self.topic_prefix}{topic.value}"


class ClickHouseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_CLICKHOUSE_", extra="ignore")

    dsn: SecretStr = Field(
        default=SecretStr("chdb://.data/clickhouse"),
        description="chdb:///abs/path, chdb://rel/path or http(s)://user:password@host:port/db",
    )


class StackSettings(BaseSettings):
    """Where the local real components live and which loopback ports they use."""

    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_STACK_", extra="ignore")

    data_dir: Path = Path(".data")
    cache_dir: Path = Path(".cache")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    clickhouse_http_port: int = 8123
    clickhouse_tcp_port: int = 9000
    startup_timeout_s: float = 90.0


class CatalogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_CATALOG_", extra="ignore")

    path: Path = Path("infra/catalog/demo-shop.yaml")


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_COLLECTOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8400
    max_body_bytes: int = 256 * 1024
    max_batch_items: int = 500
    rate_limit_per_s: float = 2000.0
    rate_limit_burst: int = 4000
    buffer_max_events: int = 50_000
    retry_after_s: int = 5
    linger_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="How long a Kafka batch stays open for more beacons (latency vs. CPU).",
    )
    kafka_connections: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Produce requests in flight at once (one Kafka connection each): a round "
        "trip to Kafka overlaps the handling of the next beacons.",
    )
    country_header: str | None = Field(
        default=None, description="Trusted proxy/CDN header carrying the ISO country code."
    )
    geoip_db_path: Path | None = None
    scrub_query_params: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["token", "password", "email", "session", "auth", "key", "code"]
    )

    _split = field_validator("scrub_query_params", mode="before")(_split_csv)


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_WORKER_", extra="ignore")

    app_id: str = "journeylens-worker"
    window_s: int = 60
    grace_s: int = 30
    store: str = "memory://"
    data_dir: Path = Field(
        default=Path(".data/worker"),
        description="Where Faust keeps its local files (and RocksDB tables when configured).",
    )
    web_port: int = 6066
    sink_batch_rows: int = 20_000
    sink_flush_s: float = 1.0
    segment_top_n: int = 8
    batch_max_events: int = Field(
        default=64_000,
        description="Events per processing batch: larger batches write the journey states "
        "and ClickHouse less often per event, and hold more messages in memory (three "
        "batches in flight: queued, processed, being stored). ``bench worker``: 64,000 gave "
        "more events/s than 40,000 in every pair (peak RSS ~385 → ~450 MB); 80,000 more still, "
        "at ~460–490 MB, too close to the 500 MB target.",
    )
    batch_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Bytes of messages per processing batch (and queued ahead), whichever of "
        "this and batch_max_events comes first: bounds the worker's memory when beacons are "
        "larger than usual.",
    )
    idle_timeout_s: float = 120.0
    session_timeout_s: float = Field(
        default=30.0, description="How long a silent worker keeps its partitions (rebalance)."
    )
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Alertmanager-format webhooks to POST alerts to."
    )

    _split = field_validator("webhook_urls", mode="before")(_split_csv)


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8500
    token_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="sha256 hex digests of accepted bearer tokens."
    )
    dev_token: SecretStr | None = Field(
        default=None, description="A plain token accepted in local demos (hashed at start-up)."
    )

    _split = field_validator("token_hashes", mode="before")(_split_csv)


class ProbeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_PROBE_", extra="ignore")

    location: str = "local-1"
    chromium_path: Path = Path("/usr/bin/chromium")
    screenshot_dir: Path = Path(".data/screenshots")
    max_network_retries: int = 2
    jitter_fraction: float = 0.1
