"""The Faust application of the worker: topics, the journey-state table, the agent.

Both input topics are co-partitioned by journey, so the worker reading both sees the RUM events
and probe results of a journey together (no repartition hop); their fetched records reach it a
batch at a time (processor/delivery.py), not through Faust's per-message agent path. State
lives in one Faust table keyed by journey, written once per journey per batch (never per event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from journeylens.processor.delivery import BatchApp
from journeylens.settings import KafkaSettings, Topic, WorkerSettings

STATE_TABLE = "journey-state"
MAX_STATE_BYTES = 16 * 1024 * 1024
PRODUCER_BATCH_BYTES = 512 * 1024
"""Below the broker's default max.message.bytes (1 MiB) of the output topics."""


@dataclass
class WorkerApp:
    app: BatchApp
    source: Any
    table: Any
    outputs: dict[str, Any]
    topic_streams: dict[str, str]
    """physical input topic → pipeline stream name."""


def build_app(worker: WorkerSettings, kafka: KafkaSettings, partitions: int = 4) -> WorkerApp:
    worker.data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = BatchApp(
        worker.app_id,
        broker=f"kafka://{kafka.bootstrap_servers.replace(',', ';kafka://')}",
        store=worker.store,
        datadir=str(worker.data_dir / f"{worker.app_id}-data"),
        topic_partitions=partitions,
        topic_allow_declare=True,
        topic_disable_leader=True,
        producer_acks=-1,
        producer_max_request_size=MAX_STATE_BYTES,
        # aiokafka waits for a partition's batch to be sent once it is full: with the default
        # 16 kB a batch's aggregates took one broker round trip per handful of messages.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 3),
        broker_max_poll_records=5000,
        stream_buffer_maxsize=50_000,
        web_enabled=False,
        table_cleanup_interval=60.0,
    )
    rum = kafka.physical(Topic.RUM_BEACONS)
    synthetic = kafka.physical(Topic.SYNTHETIC_RESULTS)
    source = app.topic(rum, synthetic, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
    )
    outputs = {
        name: app.topic(kafka.physical(topic), key_serializer="raw", value_serializer="raw")
        for name, topic in (
            ("aggregates", Topic.AGGREGATES),
            ("anomalies", Topic.ANOMALIES),
            ("alerts", Topic.ALERTS),
            ("deadletter", Topic.DEADLETTER),
        )
    }
    return WorkerApp(app, source, table, outputs, {rum: "rum", synthetic: "synthetic"})
