"""Lifecycle of the local Kafka broker (real JVM, real jars): start, status, restart, stop."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fixtures.kafka import topic_names

from journeylens.settings import KafkaSettings, StackSettings, Topic
from journeylens.stack.kafka import KAFKA_VERSION, KafkaBroker, KafkaStackError, repo_root
from journeylens.stack.process import pid_alive, port_is_free, read_pid
from journeylens.stack.topics import admin_client_options, ensure_topics, load_topic_specs

POM = repo_root() / "infra" / "kafka" / "pom.xml"


@pytest.fixture
def broker(kafka_stack_settings: StackSettings) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(kafka_stack_settings, die_with_parent=True)
    yield broker
    broker.stop(timeout_s=10.0)


def test_pom_pins_the_launcher_version() -> None:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert match is not None and match.group(1) == KAFKA_VERSION


def test_properties_render_ports_and_data_dir(tmp_path: Path) -> None:
    broker = KafkaBroker(
        StackSettings(data_dir=tmp_path, kafka_port=1234, kafka_controller_port=1235)
    )
    rendered = broker.render_properties()
    assert "listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235" in rendered
    assert f"log.dirs={tmp_path.resolve() / 'kafka' / 'log'}" in rendered
    assert "auto.create.topics.enable=false" in rendered


def test_taken_port_is_reported_with_its_setting(broker: KafkaBroker) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", broker.stack.kafka_port))
        squatter.listen()
        with pytest.raises(KafkaStackError) as raised:
            broker.start()
    message = str(raised.value)
    assert f"127.0.0.1:{broker.stack.kafka_port}" in message
    assert "JOURNEYLENS_STACK_KAFKA_PORT" in message
    assert read_pid(broker.pid_file) is None


def test_missing_maven_and_java_are_explained(
    kafka_stack_settings: StackSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    uncached = KafkaBroker(kafka_stack_settings.model_copy(update={"cache_dir": tmp_path}))
    with pytest.raises(KafkaStackError, match=r"Maven \(mvn\) not found: install it"):
        uncached.ensure_jars()
    with pytest.raises(KafkaStackError, match="Java not found"):
        uncached.start()


def test_stale_pid_file_naming_another_process_is_ignored(broker: KafkaBroker) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        broker.data_dir.mkdir(parents=True)
        broker.pid_file.write_text(f"{bystander.pid}\n")
        status = broker.status()
        assert not status.running and status.detail == "stale pid file"
        broker.stop(timeout_s=1.0)
        assert bystander.poll() is None, "stop() signalled an unrelated process"
        assert not broker.pid_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def _topic_names(broker: KafkaBroker) -> set[str]:
    return asyncio.run(topic_names(KafkaSettings(bootstrap_servers=broker.bootstrap_servers)))


@pytest.mark.kafka
def test_start_is_idempotent_restart_keeps_data_and_stop_leaves_no_process(
    broker: KafkaBroker,
) -> None:
    assert not broker.status().running
    broker.start()
    pid = read_pid(broker.pid_file)
    status = broker.status()
    assert status.running and status.pid == pid and "ready" in status.detail
    broker.start()  # already running: no second JVM
    assert read_pid(broker.pid_file) == pid

    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    specs = load_topic_specs(repo_root() / "schemas" / "topics")
    asyncio.run(ensure_topics(settings, specs))
    cluster_id = broker.cluster_id()

    broker.stop(timeout_s=30.0)
    assert not pid_alive(pid) and not broker.pid_file.exists()
    assert port_is_free("127.0.0.1", broker.stack.kafka_port)
    assert not broker.status().running

    broker.start()
    assert broker.cluster_id() == cluster_id
    assert Topic.RUM_BEACONS.value in _topic_names(broker)
    report = asyncio.run(ensure_topics(settings, specs))
    assert report.created == [] and not report.partition_mismatch
    broker.stop(timeout_s=30.0)
    assert not broker.status().running


@pytest.mark.kafka
def test_broker_that_dies_at_start_up_is_reported_with_its_log(
    kafka_stack_settings: StackSettings,
) -> None:
    broker = KafkaBroker(kafka_stack_settings, die_with_parent=True)
    meta = broker.data_dir / "log" / "meta.properties"  # present: format is skipped
    meta.parent.mkdir(parents=True)
    meta.write_text("this is not a Kafka storage directory\n")
    with pytest.raises(KafkaStackError) as raised:
        broker.start()
    assert "exited during start-up" in str(raised.value)
    assert str(broker.log_file) in str(raised.value)
    assert not broker.pid_file.exists() and not broker.status().running


@pytest.mark.kafka
async def test_session_topics_follow_their_contracts(
    kafka_settings: KafkaSettings, kafka_topics: dict[Topic, str]
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    specs = {spec.name: spec for spec in load_topic_specs(repo_root() / "schemas" / "topics")}
    assert set(kafka_topics) == set(Topic)
    admin = AIOKafkaAdminClient(**admin_client_options(kafka_settings))
    await admin.start()
    try:
        described = await admin.describe_topics(list(kafka_topics.values()))
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name) for name in kafka_topics.values()
        ]
        configs = await admin.describe_configs(resources)
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    retention = {
        resource["resource_name"]: int(entry["config_value"])
        for response in configs
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
        if entry["config_names"] == "retention.ms"
    }
    for topic, physical in kafka_topics.items():
        assert partitions[physical] == specs[topic].partitions
        assert retention[physical] == specs[topic].retention_ms
    report = await ensure_topics(kafka_settings, list(specs.values()))
    assert report.created == [] and sorted(report.existing) == sorted(kafka_topics.values())


@pytest.mark.kafka
def test_a_cluster_id_starting_with_a_dash_formats(kafka_stack_settings: StackSettings) -> None:
    """Random base64 ids start with '-' one time in 64; the format command must take them."""
    broker = KafkaBroker(kafka_stack_settings, die_with_parent=True)
    broker.data_dir.mkdir(parents=True, exist_ok=True)
    (broker.data_dir / "cluster.id").write_text("-EHCbsy4RQSv0t2wXN0FBw\n", encoding="ascii")
    broker.start()
    try:
        assert broker.status().running
        assert broker.cluster_id() == "-EHCbsy4RQSv0t2wXN0FBw"
    finally:
        broker.stop()
