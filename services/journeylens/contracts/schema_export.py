"""Export each topic's pydantic model as a JSON Schema file under ``schemas/jsonschema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from journeylens.contracts import TOPIC_MODELS
from journeylens.settings import Topic


def schema_for(topic: Topic) -> dict[str, Any]:
    model = TOPIC_MODELS[topic]
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://journeylens.dev/schemas/{topic.value}.schema.json"
    if "description" not in schema:
        schema["description"] = f"Messages of the {topic.value} topic."
    return schema


def render(topic: Topic) -> str:
    return json.dumps(schema_for(topic), indent=2, sort_keys=True) + "\n"


def schema_path(schemas_dir: Path, topic: Topic) -> Path:
    return schemas_dir / "jsonschema" / f"{topic.value}.schema.json"


def export_schemas(schemas_dir: Path) -> list[Path]:
    """Write every topic's schema; returns the files that changed."""
    changed: list[Path] = []
    for topic in Topic:
        path = schema_path(schemas_dir, topic)
        text = render(topic)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale_schemas(schemas_dir: Path) -> list[Path]:
    """Schema files that differ from what the models export now."""
    return [
        schema_path(schemas_dir, topic)
        for topic in Topic
        if not schema_path(schemas_dir, topic).exists()
        or schema_path(schemas_dir, topic).read_text(encoding="utf-8") != render(topic)
    ]
