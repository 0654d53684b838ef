"""Topic contracts in schemas/topics: complete, consistent, and clear when broken."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from journeylens.settings import Topic
from journeylens.stack.topics import TopicSpec, TopicSpecError, load_topic_spec, load_topic_specs

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
TOPICS_DIR = SCHEMAS / "topics"


@pytest.fixture(scope="module")
def specs() -> list[TopicSpec]:
    return load_topic_specs(TOPICS_DIR)


def _valid(name: str = "rum.beacons.v1") -> dict[str, object]:
    return yaml.safe_load((TOPICS_DIR / f"{name}.yaml").read_text())


def _write(tmp_path: Path, data: object, file_name: str = "rum.beacons.v1.yaml") -> Path:
    path = tmp_path / file_name
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_logical_topic_has_exactly_one_contract(specs: list[TopicSpec]) -> None:
    assert sorted(spec.name for spec in specs) == sorted(Topic)


def test_every_contract_points_at_an_existing_json_schema(specs: list[TopicSpec]) -> None:
    for spec in specs:
        assert (SCHEMAS / spec.schema_path).is_file(), spec.name


def test_rum_and_synthetic_are_co_partitioned(specs: list[TopicSpec]) -> None:
    by_name = {spec.name: spec for spec in specs}
    assert by_name[Topic.RUM_BEACONS].partitions == by_name[Topic.SYNTHETIC_RESULTS].partitions


def test_retention_becomes_topic_config(specs: list[TopicSpec]) -> None:
    rum = next(spec for spec in specs if spec.name is Topic.RUM_BEACONS)
    assert rum.topic_configs() == {"cleanup.policy": "delete", "retention.ms": str(3 * 86_400_000)}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("partitions", 0, "field 'partitions'"),
        ("cleanup_policy", "forever", "field 'cleanup_policy'"),
        ("producers", ["nobody"], "field 'producers.0'"),
        ("name", "rum.beacons.v9", "field 'name'"),
        ("colour", "blue", "field 'colour'"),
    ],
)
def test_invalid_field_names_file_and_field(
    tmp_path: Path, field: str, value: object, expected: str
) -> None:
    path = _write(tmp_path, {**_valid(), field: value})
    with pytest.raises(TopicSpecError) as raised:
        load_topic_spec(path)
    assert str(path) in str(raised.value) and expected in str(raised.value)


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = _valid()
    del data["key"]
    with pytest.raises(TopicSpecError, match=r"rum\.beacons\.v1\.yaml: field 'key'"):
        load_topic_spec(_write(tmp_path, data))


def test_file_name_must_match_topic_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid(), file_name="beacons.yaml")
    with pytest.raises(TopicSpecError, match=r"beacons\.yaml: field 'name'"):
        load_topic_spec(path)


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rum.beacons.v1.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(TopicSpecError, match=r"rum\.beacons\.v1\.yaml: cannot read"):
        load_topic_spec(path)


def test_co_partitioning_mismatch_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, _valid())
    _write(
        tmp_path, {**_valid("synthetic.results.v1"), "partitions": 8}, "synthetic.results.v1.yaml"
    )
    with pytest.raises(TopicSpecError, match="co-partitioned"):
        load_topic_specs(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TopicSpecError, match="no topic contracts"):
        load_topic_specs(tmp_path)
