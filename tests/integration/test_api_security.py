"""Authentication and injection: no token, wrong token, SQL through every parameter."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from tests.fixtures.clickhouse import RunningClickHouse
from tests.integration.api_support import TOKEN, auth, make_app, row_counts, seed

from journeylens.storage.client import Client

pytestmark = pytest.mark.clickhouse

ROUTES = [
    "/api/v1/journeys",
    "/api/v1/journeys/checkout/timeseries",
    "/api/v1/journeys/checkout/breakdown",
    "/api/v1/journeys/checkout/dependencies",
    "/api/v1/journeys/checkout/funnel",
    "/api/v1/journeys/checkout/compare",
    "/api/v1/journeys/checkout/locations",
    "/api/v1/incidents",
    "/api/v1/alerts",
    "/api/v1/anomalies",
]

PAYLOADS = [
    "checkout' OR '1'='1",
    "checkout'; DROP TABLE journey_aggregates; --",
    "x') UNION ALL SELECT name FROM system.tables --",
    "1; TRUNCATE TABLE alerts",
    "all' OR 1=1 --",
    "rum_lcp_ms_p75) FROM journey_aggregates; DROP TABLE alerts; --",
    "{journey:String}",
    "\\' OR sleep(3) --",
    "%27%20OR%201%3D1",
]

# (route, parameter, whether a payload there must be refused (4xx) or may match nothing (200))
QUERY_PARAMETERS = [
    ("/api/v1/journeys", "at", "reject"),
    ("/api/v1/journeys/checkout/timeseries", "metric", "reject"),
    ("/api/v1/journeys/checkout/timeseries", "step", "reject"),
    ("/api/v1/journeys/checkout/timeseries", "segment_dimension", "reject"),
    ("/api/v1/journeys/checkout/timeseries", "resolution", "reject"),
    ("/api/v1/journeys/checkout/timeseries", "from", "reject"),
    ("/api/v1/journeys/checkout/timeseries", "to", "reject"),
    ("/api/v1/journeys/checkout/breakdown", "dimension", "reject"),
    ("/api/v1/journeys/checkout/breakdown", "step", "reject"),
    ("/api/v1/journeys/checkout/funnel", "from", "reject"),
    ("/api/v1/incidents", "status", "reject"),
    ("/api/v1/incidents", "journey", "reject"),
    ("/api/v1/incidents", "limit", "reject"),
    ("/api/v1/incidents", "offset", "reject"),
    ("/api/v1/alerts", "journey", "reject"),
    ("/api/v1/anomalies", "journey", "reject"),
    ("/api/v1/anomalies", "limit", "reject"),
    # free-text filters: bound parameters, so a payload is just a value that matches nothing
    ("/api/v1/journeys/checkout/timeseries", "segment_value", "empty"),
    ("/api/v1/anomalies", "metric", "empty"),
]


@pytest.fixture(scope="module")
def api(clickhouse_server: RunningClickHouse, clickhouse_client: Client) -> Iterator[TestClient]:
    seed(clickhouse_client)
    app = make_app(
        clickhouse_server.target_for(clickhouse_client.database), dev_token="dev-token-xyz"
    )
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("route", ROUTES)
def test_no_token_is_401_with_bearer_challenge(api: TestClient, route: str) -> None:
    response = api.get(route)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {hashlib.sha256(TOKEN.encode()).hexdigest()}",  # the digest is not the token
        f"Basic {TOKEN}",
        "Bearer ",
        TOKEN,
    ],
)
def test_wrong_token_is_refused(api: TestClient, header: str) -> None:
    for route in ROUTES:
        response = api.get(route, headers={"Authorization": header})
        assert response.status_code in (401, 403), (route, header)
        assert "www-authenticate" in response.headers


def test_accepted_tokens(api: TestClient) -> None:
    assert api.get("/api/v1/journeys", headers=auth()).status_code == 200
    dev = {"Authorization": "Bearer dev-token-xyz"}
    assert api.get("/api/v1/journeys", headers=dev).status_code == 200


def test_openapi_and_dashboard_shell_need_no_token_but_hold_no_data(api: TestClient) -> None:
    assert api.get("/openapi.json").status_code == 200
    page = api.get("/")
    assert page.status_code == 200
    assert "checkout" not in page.text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_through_the_path_changes_nothing(
    api: TestClient, clickhouse_client: Client, payload: str
) -> None:
    before = row_counts(clickhouse_client)
    for suffix in ("timeseries", "breakdown", "dependencies", "funnel", "compare", "locations"):
        response = api.get(f"/api/v1/journeys/{quote(payload, safe='')}/{suffix}", headers=auth())
        assert response.status_code == 404, (payload, suffix, response.text)
    assert row_counts(clickhouse_client) == before


@pytest.mark.parametrize(("route", "parameter", "expect"), QUERY_PARAMETERS)
def test_injection_through_query_parameters_changes_nothing(
    api: TestClient, clickhouse_client: Client, route: str, parameter: str, expect: str
) -> None:
    before = row_counts(clickhouse_client)
    for payload in PAYLOADS:
        params = {parameter: payload}
        if parameter == "segment_value":
            params["segment_dimension"] = "country"
        response = api.get(route, params=params, headers=auth())
        if expect == "reject":
            assert 400 <= response.status_code < 500, (parameter, payload, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        else:
            assert response.status_code == 200, (parameter, payload, response.text)
            body = response.json()
            assert body.get("points", body.get("items")) == []
    assert row_counts(clickhouse_client) == before
    assert before["journey_aggregates"] > 0 and before["alerts"] > 0
