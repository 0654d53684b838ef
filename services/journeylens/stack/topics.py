"""Topic contracts (``schemas/topics/*.yaml``) and their idempotent creation on a broker.

Each YAML file describes one logical topic (sentry-kafka-schemas style): its key, partitions,
retention, compatibility, producers, consumers and JSON Schema. `ensure_topics` creates the
missing ones under their physical names (``KafkaSettings.physical``) and leaves existing ones
alone, reporting any whose partition count differs from the contract.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from journeylens.settings import KafkaSettings, Topic
from journeylens.stack.process import Progress, no_progress

TOPIC_ALREADY_EXISTS = 36
DEFAULT_TOPICS_DIR = Path("schemas/topics")


class TopicSpecError(ValueError):
    """A topic YAML file is unreadable or breaks the contract; the message names file and field."""


class Role(StrEnum):
    """Who writes or reads a topic."""

    COLLECTOR = "collector"
    PROBE = "probe"
    WORKER = "worker"
    API = "api"
    EXTERNAL = "external"


class TopicSpec(BaseModel):
    """One topic's contract as written in ``schemas/topics/<name>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Topic = Field(description="The logical topic name, e.g. 'rum.beacons.v1'.")
    description: str = Field(min_length=1)
    key: str = Field(min_length=1, description="What the message key is.")
    partitions: int = Field(ge=1)
    replication_factor: int = Field(default=1, ge=1)
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = Field(default=None, ge=-1, description="-1 keeps forever.")
    version: int = Field(ge=1)
    compatibility: Literal["backward", "forward", "full", "none"]
    producers: list[Role] = Field(min_length=1)
    consumers: list[Role] = Field(min_length=1)
    schema_path: str = Field(
        alias="schema", description="JSON Schema path relative to schemas/ (jsonschema/...)."
    )

    def topic_configs(self) -> dict[str, str]:
        """Broker-side topic configs this contract sets."""
        configs: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        return configs


def load_topic_spec(path: Path) -> TopicSpec:
    """Parse one topic YAML; errors name the file and the offending field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TopicSpecError(f"{path}: cannot read topic contract: {exc}") from exc
    if not isinstance(data, dict):
        raise TopicSpecError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    try:
        spec = TopicSpec.model_validate(data)
    except ValidationError as exc:
        raise TopicSpecError(f"{path}: {_describe(exc)}") from exc
    if path.name != f"{spec.name.value}.yaml":
        raise TopicSpecError(
            f"{path}: field 'name' is {spec.name.value!r} but the file is named "
            f"{path.name!r}; name the file '{spec.name.value}.yaml'"
        )
    return spec


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(loc) for loc in error["loc"]) or "(root)"
        parts.append(f"field '{where}': {error['msg']}")
    return "; ".join(parts)


def load_topic_specs(directory: Path = DEFAULT_TOPICS_DIR) -> list[TopicSpec]:
    """Every ``*.yaml`` contract in ``directory``, sorted by file name."""
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise TopicSpecError(f"{directory}: no topic contracts (*.yaml) found")
    specs = [load_topic_spec(path) for path in paths]
    _check_co_partitioning(specs, directory)
    return specs


def _check_co_partitioning(specs: list[TopicSpec], directory: Path) -> None:
    """RUM beacons and synthetic results are joined per journey: same key, same partitions."""
    by_name = {spec.name: spec for spec in specs}
    rum, synthetic = by_name.get(Topic.RUM_BEACONS), by_name.get(Topic.SYNTHETIC_RESULTS)
    if rum and synthetic and rum.partitions != synthetic.partitions:
        raise TopicSpecError(
            f"{directory}: field 'partitions' differs between {rum.name.value} "
            f"({rum.partitions}) and {synthetic.name.value} ({synthetic.partitions}); "
            "they are co-partitioned by journey id and must match"
        )


@dataclass
class TopicsReport:
    """What `ensure_topics` did, by physical topic name."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    partition_mismatch: dict[str, tuple[int, int]] = field(default_factory=dict)
    """physical name -> (partitions in the contract, partitions on the broker)."""


def admin_client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options for aiokafka clients built from ``KafkaSettings``."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context()
    if kafka.sasl_mechanism:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options


async def ensure_topics(
    kafka: KafkaSettings, specs: list[TopicSpec], progress: Progress = no_progress
) -> TopicsReport:
    """Create the topics of ``specs`` that are missing; leave existing ones as they are."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**admin_client_options(kafka))
    await admin.start()
    try:
        return await _ensure_with(admin, kafka, specs, progress)
    finally:
        await admin.close()


async def delete_topics_with_prefix(kafka: KafkaSettings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a benchmark's own, say); return
    their names."""
    from aiokafka.admin import AIOKafkaAdminClient

    if not prefix:
        raise ValueError("a prefix is needed: every topic would match")
    admin = AIOKafkaAdminClient(**admin_client_options(kafka))
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


async def _ensure_with(
    admin: Any, kafka: KafkaSettings, specs: list[TopicSpec], progress: Progress
) -> TopicsReport:
    report = TopicsReport()
    present = set(await admin.list_topics())
    missing = [spec for spec in specs if kafka.physical(spec.name) not in present]
    for name in await _create(admin, kafka, missing):
        report.created.append(name)
        progress(f"created topic {name}")
    existing = [spec for spec in specs if kafka.physical(spec.name) not in report.created]
    await _compare_partitions(admin, kafka, existing, report, progress)
    return report


async def _create(admin: Any, kafka: KafkaSettings, specs: list[TopicSpec]) -> list[str]:
    """Create ``specs``; return the names created now (a concurrent creator's win is fine)."""
    if not specs:
        return []
    from aiokafka.admin import NewTopic
    from aiokafka.errors import for_code

    new_topics = [
        NewTopic(
            name=kafka.physical(spec.name),
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            topic_configs=spec.topic_configs(),
        )
        for spec in specs
    ]
    response = await admin.create_topics(new_topics)
    created = []
    for name, code, message, *_ in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TOPIC_ALREADY_EXISTS:
            raise for_code(code)(f"creating topic {name}: {message}")
    return created


async def _compare_partitions(
    admin: Any,
    kafka: KafkaSettings,
    specs: list[TopicSpec],
    report: TopicsReport,
    progress: Progress,
) -> None:
    if not specs:
        return
    wanted = {kafka.physical(spec.name): spec.partitions for spec in specs}
    for described in await admin.describe_topics(list(wanted)):
        name, actual = described["topic"], len(described["partitions"])
        report.existing.append(name)
        if actual != wanted[name]:
            report.partition_mismatch[name] = (wanted[name], actual)
            progress(
                f"topic {name} exists with {actual} partitions but its contract says "
                f"{wanted[name]}; left as is (change partitions deliberately, keys move)"
            )
