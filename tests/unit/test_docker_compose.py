"""docker-compose.yml is checked as a file: structure, pinned images, healthchecks, ports, volumes.

No Docker engine runs here, so these checks are what keeps the file honest: every service has
a pinned image, long-running services have healthchecks, dependencies exist, every
JOURNEYLENS_* variable is a real setting, and every command is a real CLI sub-command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic_settings import BaseSettings

from journeylens import settings as settings_module
from journeylens.cli.main import cli

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
JOBS = {"topics", "migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _known_env_vars() -> set[str]:
    names: set[str] = set()
    for obj in vars(settings_module).values():
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings:
            prefix = obj.model_config.get("env_prefix", "")
            names |= {f"{prefix}{field}".upper() for field in obj.model_fields}
    return names


def test_top_level_structure(compose: dict[str, Any]) -> None:
    assert set(compose) <= {"name", "services", "volumes", "networks", "configs", "secrets"} | {
        key for key in compose if key.startswith("x-")
    }
    assert "version" not in compose, "the Compose Specification has no version key"
    assert {"kafka", "clickhouse", "migrate", "topics"} <= set(compose["services"])


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")


def test_kafka_image_matches_the_pinned_broker(compose: dict[str, Any]) -> None:
    pom = (COMPOSE.parent / "infra" / "kafka" / "pom.xml").read_text()
    version = compose["services"]["kafka"]["image"].split(":")[1]
    assert f"<kafka.version>{version}</kafka.version>" in pom


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in JOBS:
            assert service.get("restart") == "no", f"job {name} must not restart"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}


def test_depends_on_names_real_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in {
                "service_healthy",
                "service_started",
                "service_completed_successfully",
            }


def test_ports_and_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", str(port)), f"{name}: {port}"
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert {"kafka-data", "clickhouse-data"} <= declared


def test_environment_names_real_settings(compose: dict[str, Any]) -> None:
    known = _known_env_vars()
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for var in env:
            if var.startswith("JOURNEYLENS_"):
                assert var in known, f"{name}: {var} is not a JourneyLens setting"


def test_commands_are_cli_subcommands(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if not service.get("image", "").startswith("journeylens:"):
            continue
        argv = service["command"]
        command: click.Command = cli
        for word in argv:
            if word.startswith("-") or not isinstance(command, click.Group):
                break
            sub = command.get_command(click.Context(command), word)
            assert sub is not None, f"{name}: `journeylens {' '.join(argv)}` is not a command"
            command = sub


def test_every_role_runs_and_workers_scale(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"collector", "worker", "api", "probe", "demo-shop"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert (
        services["collector"]["environment"]["JOURNEYLENS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    )
