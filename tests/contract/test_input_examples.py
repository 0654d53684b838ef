"""Every raw input example in ``schemas/examples/inputs/<format>/`` parses to exactly the
normalized events of its ``<name>.expected.json`` (hand-checked), for a fixed request."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from journeylens.collector.formats import PARSERS
from journeylens.collector.formats.base import RequestMeta
from journeylens.contracts.rum_beacons_v1 import RumEvent

INPUTS = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "inputs"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
META = RequestMeta(
    app="demo-shop",
    received_at=datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC),
    user_agent=USER_AGENT,
    content_type="text/plain;charset=UTF-8",
)

# How many items of each example are rejected (the rest must all land).
REJECTED = {
    "journeylens/checkout_batch.json": 2,  # unknown item type, FID is no vital we keep
    "journeylens/soft_navigation_clamped.json": 0,
    "web-vitals/report_all_changes.txt": 2,  # negative TTFB, a bare string
    "web-vitals/single_with_integrator_fields.json": 0,
    "boomerang/page_load_get.txt": 0,
    "boomerang/spa_post_sendbeacon.txt": 0,
    "boomerang/unload_quit_post.txt": 0,
    "boomerang/xhr_error_get.txt": 0,
    "otlp-logs/web_vitals_logs.json": 1,  # CLS with a non-numeric value
    "otlp-traces/document_load.json": 1,  # resourceFetch ending before it starts
    "faro/batch_1_navigation.json": 0,
    "faro/batch_2_vitals_errors.json": 1,  # web-vitals measurement with only fid
    "reporting-api/nel_and_csp_reports.json": 2,  # unsupported type, NEL body w/o phase
}


def _examples() -> list[Path]:
    return sorted(
        p
        for p in INPUTS.glob("*/*")
        if p.suffix in {".json", ".txt"} and not p.name.endswith(".expected.json")
    )


def parse_example(path: Path) -> tuple[list[dict[str, object]], int]:
    body = path.read_bytes()
    result = PARSERS[path.parent.name](body, META)
    return [e.model_dump(mode="json") for e in result.events], len(result.rejected)


def test_every_example_has_expectations() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in _examples()}
    assert names == set(REJECTED)
    assert {p.parent.name for p in _examples()} == set(PARSERS)


@pytest.mark.parametrize("path", _examples(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_parses_to_expected_events(path: Path) -> None:
    events, rejected = parse_example(path)
    expected = orjson.loads(path.with_name(path.stem + ".expected.json").read_bytes())
    assert events == expected
    assert rejected == REJECTED[f"{path.parent.name}/{path.name}"]
    for event in expected:  # the expectations themselves honour the contract
        assert RumEvent.model_validate(event).model_dump(mode="json") == event


@pytest.mark.parametrize("path", _examples(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_replaying_an_example_gives_the_same_events(path: Path) -> None:
    assert parse_example(path) == parse_example(path)
