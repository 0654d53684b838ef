"""Property-based: schemathesis generates requests from the app's own OpenAPI document.

No generated input may cause a 5xx, and every response must match the documented status
codes, content types and schemas. Runs in-process through ASGI against real ClickHouse.

schemathesis 4.32's pytest integration (``schemathesis.pytest.from_fixture``) reads
``request.node._nodeid``, which pytest 9 removed, so the test drives hypothesis itself: one
strategy per operation and generation mode (valid and invalid inputs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from tests.fixtures.clickhouse import RunningClickHouse
from tests.integration.api_support import auth, make_app, seed

from journeylens.storage.client import Client

pytestmark = pytest.mark.clickhouse

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}


@pytest.fixture(scope="module")
def api_schema(clickhouse_server: RunningClickHouse, clickhouse_client: Client) -> Iterator[Any]:
    seed(clickhouse_client)
    app = make_app(clickhouse_server.target_for(clickhouse_client.database))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_the_document_lists_every_route(api_schema: Any) -> None:
    labels = {op.label for op in operations(api_schema)}
    assert len(labels) == 10, labels


VARIANTS = [
    (GenerationMode.POSITIVE, False),
    (GenerationMode.POSITIVE, True),
    (GenerationMode.NEGATIVE, False),
]


@pytest.mark.parametrize(
    ("mode", "known_journey"),
    VARIANTS,
    ids=["valid", "valid-known-journey", "invalid"],
)
def test_no_server_errors_and_documented_responses(
    api_schema: Any, mode: GenerationMode, known_journey: bool
) -> None:
    checks = CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]
    for operation in operations(api_schema):
        if known_journey and "{journey_id}" not in operation.path:
            continue
        path = {"journey_id": "checkout"} if known_journey else None

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=auth(), checks=checks)

        run()
