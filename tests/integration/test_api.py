"""The query API against real ClickHouse: known rows in, the exact numbers out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.fixtures.clickhouse import RunningClickHouse
from tests.integration.api_support import (
    Seeded,
    aggregates,
    auth,
    insert,
    iso,
    make_app,
    seed,
)

from journeylens.api.bench import WARM_UP
from journeylens.api.db import Database
from journeylens.api.metrics import CHART_METRICS, METRICS
from journeylens.api.models import Timeseries
from journeylens.api.params import sql_time
from journeylens.api.queries import (
    _series_sql,
    as_utc,
    ceil_to,
    clean,
    floor_to,
    metrics_together,
    series_source,
)
from journeylens.storage.client import Client

pytestmark = pytest.mark.clickhouse


@pytest.fixture(scope="module")
def seeded(clickhouse_client: Client) -> Seeded:
    return seed(clickhouse_client)


@pytest.fixture(scope="module")
def api(
    clickhouse_server: RunningClickHouse, clickhouse_client: Client, seeded: Seeded
) -> Iterator[TestClient]:
    app = make_app(clickhouse_server.target_for(clickhouse_client.database))
    with TestClient(app) as client:
        yield client


def get(api: TestClient, path: str, **params: object) -> dict:
    response = api.get(path, params=params, headers=auth())
    assert response.status_code == 200, response.text
    return response.json()


def hour_range(seeded: Seeded) -> dict[str, str]:
    return {"from": iso(seeded.base), "to": iso(seeded.base + timedelta(minutes=10))}


def test_journeys_carry_status_vitals_availability_and_open_incidents(
    api: TestClient, seeded: Seeded
) -> None:
    body = get(api, "/api/v1/journeys", at=iso(seeded.at))
    journeys = {item["id"]: item for item in body["items"]}
    assert set(journeys) == {
        "login",
        "sso-api",
        "search",
        "checkout",
        "products-api",
        "static-assets",
    }
    checkout = journeys["checkout"]
    assert checkout["status"] == "degraded"
    assert checkout["scope"] == "rum_only"
    assert checkout["reasons"] == ["rum.lcp_ms.p75 2900 > 2500"]
    assert checkout["window_start"].startswith(iso(seeded.base + timedelta(minutes=9))[:19])
    lcp = next(v for v in checkout["vitals"] if v["name"] == "lcp")
    assert lcp == {
        "name": "lcp",
        "p75": 2900.0,
        "threshold": {"good": 2500.0, "poor": 4000.0, "direction": "above"},
        "rating": "needs_improvement",
    }
    assert checkout["error_rate"] == 0.09
    assert checkout["error_rate_threshold"] == 0.02
    # last hour: 10 windows x 2 runs (a replayed window counted once), 1 failure
    assert checkout["synthetic_runs"] == 20
    assert checkout["availability"] == 0.95
    [incident] = checkout["open_incidents"]
    assert incident["incident_id"] == "checkout-20261125T100000Z"
    assert incident["revenue_at_risk"] == 5916.0
    assert incident["suspected_dependency"] == "payment"
    assert incident["failing_locations"] == ["eu-central-frankfurt"]
    assert [s["metric"] for s in incident["signals"]] == [
        "rum.error_rate",
        "synthetic.availability",
    ]
    assert checkout["revenue_at_risk"] == 5916.0
    # the login incident was resolved: not open
    assert journeys["login"]["open_incidents"] == []
    assert journeys["search"]["status"] == "no_data"


def test_timeseries_raw_windows(api: TestClient, seeded: Seeded) -> None:
    body = get(
        api, "/api/v1/journeys/checkout/timeseries", metric="rum.lcp_ms.p75", **hour_range(seeded)
    )
    assert body["resolution"] == "1m"
    assert body["source"] == "journey_aggregates"
    assert [p["value"] for p in body["points"]] == [2000.0 + 100 * i for i in range(10)]
    assert body["threshold"] == {"good": 2500.0, "poor": 4000.0, "direction": "above"}


def test_timeseries_five_minute_buckets(api: TestClient, seeded: Seeded) -> None:
    body = get(
        api,
        "/api/v1/journeys/checkout/timeseries",
        metric="rum.error_rate",
        resolution="5m",
        **hour_range(seeded),
    )
    # windows 0-4: 0+1+2+3+4 errors of 500 views; 5-9: 35 of 500 (the replay counted once)
    assert [p["value"] for p in body["points"]] == [0.02, 0.07]


def test_resolution_follows_the_range(api: TestClient, seeded: Seeded) -> None:
    for hours, resolution in ((6, "1m"), (24, "5m"), (24 * 30, "1h"), (24 * 90, "1d")):
        body = get(
            api,
            "/api/v1/journeys/checkout/timeseries",
            metric="synthetic.availability",
            **{"from": iso(seeded.at - timedelta(hours=hours)), "to": iso(seeded.at)},
        )
        assert body["resolution"] == resolution, hours


def test_rollups_give_the_hourly_numbers_of_the_raw_windows(
    api: TestClient, clickhouse_client: Client, seeded: Seeded
) -> None:
    window = {"from": iso(seeded.base - timedelta(days=3)), "to": iso(seeded.at)}
    for metric, expected in (
        ("rum.error_rate", 45 / 1000),
        ("synthetic.availability", 19 / 20),
        ("rum.page_views", 1000.0),
        ("funnel.completion_rate", 0.4),
    ):
        body = get(api, "/api/v1/journeys/checkout/timeseries", metric=metric, **window)
        assert body["resolution"] == "1h"
        assert body["source"] == "journey_window_counters"
        [point] = body["points"]
        assert point["value"] == pytest.approx(expected, abs=1e-9), metric
    # segment series come from the rollup of the windows' p75s (count-weighted)
    body = get(
        api,
        "/api/v1/journeys/checkout/timeseries",
        metric="rum.lcp_ms.p75",
        segment_dimension="country",
        segment_value="DE",
        **window,
    )
    assert [p["value"] for p in body["points"]] == [3200.0]
    # whole-population vitals come from the raw beacons' t-digest: the same as computed raw
    raw = clickhouse_client.query(
        "SELECT quantileTDigest(0.75)(vitals_lcp_ms) FROM rum_events FINAL "
        "WHERE journey = 'checkout' AND NOT synthetic"
    ).result_rows[0][0]
    body = get(api, "/api/v1/journeys/checkout/timeseries", metric="rum.lcp_ms.p75", **window)
    assert body["source"] == "rum_vitals_hourly"
    [point] = body["points"]
    assert point["value"] == pytest.approx(raw, rel=1e-9)
    # by the day, from the daily t-digests (merged from the hourly ones: all in one hour here)
    body = get(
        api,
        "/api/v1/journeys/checkout/timeseries",
        metric="rum.lcp_ms.p75",
        resolution="1d",
        **window,
    )
    assert body["source"] == "rum_vitals_daily"
    values = [p["value"] for p in body["points"] if p["value"] is not None]
    assert values == [pytest.approx(raw, rel=1e-9)]
    daily = get(
        api,
        "/api/v1/journeys/checkout/timeseries",
        metric="rum.error_rate",
        resolution="1d",
        **window,
    )
    assert daily["source"] == "journey_rollup_daily"
    assert [p["value"] for p in daily["points"] if p["value"] is not None] == [0.045]


def test_breakdown_by_country(api: TestClient, seeded: Seeded) -> None:
    body = get(
        api, "/api/v1/journeys/checkout/breakdown", dimension="country", **hour_range(seeded)
    )
    rows = {row["value"]: row for row in body["items"]}
    assert list(rows) == ["FR", "DE"]  # by page views
    assert rows["FR"]["lcp_p75_ms"] == 1800.0
    assert rows["FR"]["ratings"]["rum.lcp_ms.p75"] == "good"
    assert rows["DE"]["lcp_p75_ms"] == 3200.0
    assert rows["DE"]["ratings"]["rum.lcp_ms.p75"] == "needs_improvement"
    assert rows["DE"]["error_rate"] == 0.1
    assert rows["DE"]["ratings"]["rum.error_rate"] == "poor"


def test_dependencies_ranked_by_impact(api: TestClient, seeded: Seeded) -> None:
    body = get(api, "/api/v1/journeys/checkout/dependencies", **hour_range(seeded))
    assert [(d["host"], d["requests"], d["failures"], d["p75_ms"]) for d in body["items"]] == [
        ("pay.localhost", 300, 60, 900.0),
        ("cdn.localhost", 1000, 10, 120.0),
    ]
    assert body["items"][0]["failure_rate"] == 0.2
    assert body["items"][0]["steps"] == ["payment"]


def test_funnel(api: TestClient, seeded: Seeded) -> None:
    body = get(api, "/api/v1/journeys/checkout/funnel", **hour_range(seeded))
    assert [(s["step"], s["sessions_entered"]) for s in body["steps"]] == [
        ("cart", 500),
        ("checkout-page", 400),
        ("payment", 300),
        ("confirmation", 200),
    ]
    assert body["steps"][3]["share_of_first"] == 0.4
    assert body["steps"][1]["drop_off"] == 0.2
    assert (body["sessions_entered"], body["sessions_completed"]) == (500, 200)
    assert body["completion_rate"] == 0.4


def test_compare_rum_and_synthetic(api: TestClient, seeded: Seeded) -> None:
    body = get(api, "/api/v1/journeys/checkout/compare", **hour_range(seeded))
    steps = {s["step"]: s for s in body["steps"]}
    whole = steps["_journey"]
    assert whole["rum"]["page_views"] == 1000
    assert whole["rum"]["lcp_p75_ms"] == 2450.0
    assert whole["synthetic"] == {
        "runs": 20,
        "failures": 1,
        "availability": 0.95,
        "duration_p95_ms": 1200.0,
    }
    assert steps["payment"]["rum"]["page_views"] == 300
    assert steps["payment"]["synthetic"]["runs"] == 0


def test_locations(api: TestClient, seeded: Seeded) -> None:
    body = get(api, "/api/v1/journeys/checkout/locations", **hour_range(seeded))
    assert [
        (r["location"], r["runs"], r["failures"], r["availability"]) for r in body["items"]
    ] == [
        ("eu-central-frankfurt", 10, 1, 0.9),
        ("eu-west-paris", 10, 0, 1.0),
    ]


def test_incidents_history_and_filter(api: TestClient, seeded: Seeded) -> None:
    body = get(api, "/api/v1/incidents")
    assert [(i["incident_id"], i["status"]) for i in body["items"]] == [
        ("checkout-20261125T100000Z", "firing"),
        ("login-incident-1", "resolved"),
    ]
    assert body["items"][1]["resolved_at"] is not None
    assert body["next_offset"] is None
    firing = get(api, "/api/v1/incidents", status="firing")
    assert [i["revenue_at_risk"] for i in firing["items"]] == [5916.0]
    page = get(api, "/api/v1/incidents", limit=1)
    assert len(page["items"]) == 1
    assert page["next_offset"] == 1
    assert get(api, "/api/v1/incidents", journey="search")["items"] == []


def test_alerts_and_anomalies(api: TestClient, seeded: Seeded) -> None:
    window = {"from": iso(seeded.base - timedelta(hours=2)), "to": iso(seeded.at)}
    alerts = get(api, "/api/v1/alerts", **window)
    assert [a["type"].rsplit(".", 1)[1] for a in alerts["items"]] == [
        "firing",
        "resolved",
        "firing",
    ]
    anomalies = get(api, "/api/v1/anomalies", journey="checkout", **window)
    [anomaly] = anomalies["items"]
    assert (anomaly["metric"], anomaly["value"], anomaly["threshold"]) == (
        "rum.error_rate",
        0.1602,
        0.02,
    )
    none = get(api, "/api/v1/anomalies", metric="rum.apdex", **window)
    assert none["items"] == []


def test_errors_are_problem_json(api: TestClient, seeded: Seeded) -> None:
    cases = [
        ("/api/v1/journeys/nope/funnel", {}, 404),
        ("/api/v1/journeys/checkout/timeseries", {"metric": "rum.nope"}, 400),
        ("/api/v1/journeys/checkout/timeseries", {"step": "nope"}, 404),
        ("/api/v1/journeys/checkout/funnel", {"from": iso(seeded.at), "to": iso(seeded.base)}, 400),
        ("/api/v1/journeys/checkout/breakdown", {"dimension": "planet"}, 422),
        ("/api/v1/incidents", {"limit": 1001}, 422),
        (
            "/api/v1/journeys/checkout/timeseries",
            {
                "resolution": "1m",
                "from": iso(seeded.base - timedelta(days=30)),
                "to": iso(seeded.at),
            },
            400,
        ),
    ]
    for path, params, status in cases:
        response = api.get(path, params=params, headers=auth())
        assert response.status_code == status, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status
        assert body["type"].startswith("urn:journeylens:problem:")


def test_openapi_documents_every_route(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (Authorization: Bearer).",
    }
    for path, item in spec["paths"].items():
        for operation in item.values():
            ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert "$ref" in ok, path
            assert operation["security"] == [{"bearer": []}], path
            problem = operation["responses"]["401"]["content"]["application/problem+json"]
            assert problem["schema"]["$ref"].endswith("/Problem")


def test_dashboard_is_served_without_external_assets(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    assert api.get("/journeys/checkout").status_code == 200
    assert api.get("/static/app.js").status_code == 200


def test_ranges_within_the_same_minutes_give_the_same_points(
    api: TestClient, seeded: Seeded
) -> None:
    """Bounds are quantized to whole minutes (windows start on the minute) before they reach
    both the SQL and the answer cache: a range ending mid-minute selects the same windows."""
    on_the_minute = {
        "from": iso(seeded.base),
        "to": iso(seeded.base + timedelta(minutes=5)),
    }
    mid_minute = {
        "from": iso(seeded.base - timedelta(seconds=20)),
        "to": iso(seeded.base + timedelta(minutes=4, seconds=31)),
    }
    points = {}
    for resolution in ("1m", "5m"):
        a, b = (
            get(
                api,
                "/api/v1/journeys/checkout/timeseries",
                metric="rum.lcp_ms.p75",
                resolution=resolution,
                **window,
            )
            for window in (on_the_minute, mid_minute)
        )
        assert a["points"] == b["points"], resolution
        assert b["from"].startswith(mid_minute["from"][:19])
        Timeseries.model_validate(b)  # the spliced body is the model's JSON
        points[resolution] = [p["value"] for p in b["points"]]
    assert points["1m"] == [2000.0 + 100 * i for i in range(5)]
    assert len(points["5m"]) == 1


def test_charted_metrics_answered_together_give_each_metric_s_own_numbers(
    clickhouse_server: RunningClickHouse, clickhouse_client: Client, seeded: Seeded
) -> None:
    """The journey page's metrics of one source come from one query (one cache entry); every
    one of them has exactly the points of its own single-metric query, at every resolution
    that reads window rows, whole population and segment."""
    app = make_app(clickhouse_server.target_for(clickhouse_client.database))
    reader = app.state.api_context.reader
    seconds = {"1m": 60, "5m": 300, "1h": 3600}
    cases = (
        ("1m", "all", "all", seeded.base, seeded.at),
        ("5m", "all", "all", seeded.base - timedelta(seconds=20), seeded.at),
        ("5m", "country", "DE", seeded.base, seeded.at),
        ("1h", "all", "all", seeded.base - timedelta(days=3), seeded.at),
        ("1h", "country", "DE", seeded.base, seeded.at),
    )
    with TestClient(app) as api:
        for resolution, dimension, value, start, end in cases:
            misses = reader.cache.stats().misses
            for name in CHART_METRICS:
                body = get(
                    api,
                    "/api/v1/journeys/checkout/timeseries",
                    metric=name,
                    resolution=resolution,
                    segment_dimension=dimension,
                    segment_value=value,
                    **{"from": iso(start), "to": iso(end)},
                )
                metric = METRICS[name]
                source = series_source(metric, dimension, resolution)
                assert body["source"] == source
                # the same metric alone, straight from ClickHouse, with the API's bounds
                if resolution == "1h":
                    bounds = floor_to(start, 3600), ceil_to(end, 3600)
                else:
                    bounds = ceil_to(start, 60), ceil_to(end, 60)
                alone = reader.db.rows(
                    _series_sql(source, (metric,)),
                    {
                        "journeys": ["checkout"],
                        "step": "_journey",
                        "dimension": dimension,
                        "segment": value,
                        "seconds": seconds[resolution],
                        "from": sql_time(bounds[0]),
                        "to": sql_time(bounds[1]),
                    },
                )
                points = [p["value"] for p in body["points"]]
                assert points == [clean(row["v0"]) for row in alone], (name, resolution, value)
                if dimension == "all" and not source.startswith("rum_vitals"):
                    assert points and all(v is not None for v in points), (name, resolution)
            # one query for every window-row metric, one per t-digest metric (hourly vitals)
            digests = sum(
                series_source(METRICS[n], dimension, resolution).startswith("rum_vitals")
                for n in CHART_METRICS
            )
            assert reader.cache.stats().misses - misses == 1 + digests, (resolution, value)
            together = metrics_together(METRICS["rum.error_rate"], dimension, resolution)
            assert len(together) == len(CHART_METRICS) - digests
        # known numbers through the shared query: 5-minute error rates (replay counted once)
        body = get(
            api,
            "/api/v1/journeys/checkout/timeseries",
            metric="rum.error_rate",
            resolution="5m",
            **hour_range(seeded),
        )
        assert [p["value"] for p in body["points"]] == [0.02, 0.07]


def test_the_bench_warm_up_touches_neither_clickhouse_nor_the_answer_cache(
    api: TestClient,
) -> None:
    reader = api.app.state.api_context.reader  # type: ignore[attr-defined]
    before = reader.cache.stats()
    path, params = WARM_UP
    response = api.get(path, params=params, headers=auth())
    assert response.status_code == 404
    assert reader.cache.stats() == before


def test_one_query_for_several_journeys_gives_each_journey_its_own_numbers(
    clickhouse_client: Client, seeded: Seeded
) -> None:
    """Concurrent misses of one shape share a query (journey IN ...): each journey's points are
    those of its own query, a journey without rows gets none, whichever source is read."""
    other = []
    for row in aggregates(seeded.base):
        if row["step"] == "_journey" and row["segment_dimension"] == "all":
            other.append(
                {**row, "journey": "zz-batch", "aggregate_id": "zz-" + row["aggregate_id"]}
            )
    insert(clickhouse_client, "journey_aggregates", other)
    database = Database(lambda: clickhouse_client)
    journeys = ["checkout", "zz-batch", "nobody"]
    for resolution, source, start, end in (
        ("1m", "journey_aggregates", seeded.base, seeded.at),
        ("5m", "journey_window_counters", seeded.base, seeded.at),
        ("1h", "journey_window_counters", seeded.base - timedelta(days=1), seeded.at),
        ("1d", "journey_rollup_daily", seeded.base - timedelta(days=3), seeded.at),
    ):
        metrics = metrics_together(METRICS["rum.error_rate"], "all", resolution)
        seconds = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}[resolution]
        params = {
            "step": "_journey",
            "dimension": "all",
            "segment": "all",
            "seconds": seconds,
            "from": sql_time(floor_to(start, seconds)),
            "to": sql_time(ceil_to(end, seconds)),
        }
        sql = _series_sql(source, metrics)
        together = database.rows(sql, {**params, "journeys": journeys})
        for journey in journeys:
            alone = database.rows(sql, {**params, "journeys": [journey]})
            assert [r for r in together if r["journey"] == journey] == alone, (resolution, journey)
            assert bool(alone) == (journey != "nobody"), (resolution, journey)
        if resolution == "5m":  # the same windows for both: 0+1+2+3+4 errors / 500 views
            v = f"v{[m.name for m in metrics].index('rum.error_rate')}"
            first = [r for r in together if as_utc(r["t"]) == start]
            assert {r["journey"]: r[v] for r in first} == {
                "checkout": pytest.approx(0.02),
                "zz-batch": pytest.approx(0.02),
            }
