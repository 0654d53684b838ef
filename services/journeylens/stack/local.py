"""The local stack as one unit: the Kafka broker and the ClickHouse server of this machine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from journeylens.settings import ClickHouseSettings, KafkaSettings, StackSettings
from journeylens.stack.clickhouse_server import ClickHouseServer
from journeylens.stack.kafka import KafkaBroker
from journeylens.stack.process import ComponentStatus, Progress, no_progress, pid_alive, read_pid
from journeylens.stack.topics import ensure_topics, load_topic_specs
from journeylens.storage.client import make_client, parse_dsn
from journeylens.storage.migrations import apply_migrations


@dataclass
class LocalStack:
    stack: StackSettings
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings

    @property
    def broker(self) -> KafkaBroker:
        return KafkaBroker(self.stack, self.kafka)

    @property
    def server(self) -> ClickHouseServer:
        return ClickHouseServer(self.stack, self.clickhouse)

    def up(self, progress: Progress = no_progress) -> None:
        """Start Kafka and ClickHouse (reusing running ones), create topics, migrate."""
        broker = self.broker
        broker.ensure_jars(progress)
        broker.start(progress)
        self.server.start(progress)
        # Topics go to the broker this stack runs, whatever bootstrap the settings name.
        own = self.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        report = asyncio.run(ensure_topics(own, load_topic_specs(), progress))
        progress(f"topics: {len(report.created)} created, {len(report.existing)} existing")
        migrate(self.clickhouse_dsn(), progress)

    def down(self, progress: Progress = no_progress) -> None:
        self.server.stop(progress=progress)
        self.broker.stop(progress=progress)

    def status(self) -> list[ComponentStatus]:
        return [self.broker.status(), self.server.status()]

    def clickhouse_dsn(self) -> str:
        return resolve_clickhouse_dsn(self.clickhouse, self.stack)


def resolve_clickhouse_dsn(clickhouse: ClickHouseSettings, stack: StackSettings) -> str:
    """The DSN to use: the local server's HTTP DSN when it serves the configured chdb path.

    chDB lets one process open a data path; while ``journeylens stack up`` holds it, every
    other process reaches the same data through the server's HTTP listener.
    """
    dsn = configured_clickhouse_dsn(clickhouse, stack)
    target = parse_dsn(dsn)
    if not target.embedded or target.path is None:
        return dsn
    server = ClickHouseServer(stack, clickhouse)
    if target.path.resolve() == server.data_path and pid_alive(read_pid(server.pid_file)):
        return server.http_dsn
    return dsn


def configured_clickhouse_dsn(clickhouse: ClickHouseSettings, stack: StackSettings) -> str:
    """``JOURNEYLENS_CLICKHOUSE_DSN`` when set, else the embedded data under the stack's data dir.

    So ``JOURNEYLENS_STACK_DATA_DIR`` alone moves both: the stack's server serves that directory
    and every process that is not told otherwise reads and migrates the same data.
    """
    if "dsn" in clickhouse.model_fields_set:
        return clickhouse.dsn.get_secret_value()
    return f"chdb://{stack.data_dir / 'clickhouse'}"


def migrate(dsn: str, progress: Progress = no_progress) -> list[str]:
    target = parse_dsn(dsn)
    client = make_client(dsn)
    try:
        applied = apply_migrations(client, target.database, progress)
    finally:
        client.close()
    progress(f"migrations: {len(applied)} applied ({target.masked()})")
    return applied
