"""Every example message validates against its pydantic contract and its exported JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from journeylens.contracts import TOPIC_MODELS
from journeylens.contracts.schema_export import schema_path, stale_schemas
from journeylens.settings import Topic

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _examples() -> list[tuple[Topic, Path]]:
    found = []
    for topic in Topic:
        name, version = topic.value.rsplit(".", 1)
        found += [
            (topic, p) for p in sorted((SCHEMAS / "examples" / name / version).glob("*.json"))
        ]
    return found


def test_every_topic_has_examples() -> None:
    covered = {topic for topic, _ in _examples()}
    assert covered == set(Topic)


@pytest.mark.parametrize(("topic", "path"), _examples(), ids=lambda v: getattr(v, "name", v))
def test_example_validates_against_model_and_schema(topic: Topic, path: Path) -> None:
    message = json.loads(path.read_text())
    model = TOPIC_MODELS[topic].model_validate(message)
    schema = json.loads(schema_path(SCHEMAS, topic).read_text())
    jsonschema.Draft202012Validator(schema).validate(message)
    # What the model serialises is itself valid against the published schema.
    jsonschema.Draft202012Validator(schema).validate(model.model_dump(mode="json"))


def test_exported_schemas_are_current() -> None:
    assert stale_schemas(SCHEMAS) == [], "run `journeylens schemas export` and commit the result"


def test_schema_rejects_a_broken_message() -> None:
    schema = json.loads(schema_path(SCHEMAS, Topic.RUM_BEACONS).read_text())
    broken = json.loads((SCHEMAS / "examples/rum.beacons/v1/checkout_page_view.json").read_text())
    broken["sample_rate"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)
