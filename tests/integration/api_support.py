"""Known rows for the API tests (test_api, test_api_security, schemathesis, e2e dashboard).

`seed(client, base)` writes, relative to ``base`` (an hour start two hours ago, within the raw
tables' 30-day TTL), ten 1-minute windows of the ``checkout`` journey (journey level, its four
steps, two country segments), a replay of the journey-level windows, two incidents, an anomaly
and 40 raw RUM beacons. The expected numbers are spelled out in `Expected`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from journeylens.api.app import create_app
from journeylens.contracts.catalog import Catalog, load_catalog
from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.contracts.experience_alerts_v1 import AlertEvent
from journeylens.contracts.experience_anomalies_v1 import Anomaly
from journeylens.settings import ApiSettings
from journeylens.storage.client import ClickHouseTarget, Client, client_for
from journeylens.storage.rows import RowFlattener, to_json_each_row
from journeylens.storage.sink import INSERT_SETTINGS, table_shape

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"
TABLES = (
    "rum_events",
    "synthetic_results",
    "journey_aggregates",
    "anomalies",
    "alerts",
    "journey_rollup_hourly",
    "journey_rollup_daily",
    "rum_vitals_hourly",
    "rum_vitals_daily",
)
STEPS = {"cart": 50, "checkout-page": 40, "payment": 30, "confirmation": 20}
WINDOWS = 10


def catalog() -> Catalog:
    return load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml")


def make_app(target: ClickHouseTarget, **settings: Any) -> FastAPI:
    api_settings = ApiSettings(
        token_hashes=[hashlib.sha256(TOKEN.encode()).hexdigest()], **settings
    )
    return create_app(api_settings, lambda: client_for(target, create_database=False), catalog())


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def base_hour() -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=2)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _q(count: int, p75: float | None) -> dict[str, Any]:
    if p75 is None or count == 0:
        return {"count": 0, "p50": None, "p75": None, "p95": None}
    return {"count": count, "p50": p75 * 0.8, "p75": p75, "p95": p75 * 1.5}


def aggregate(
    start: datetime,
    step: str,
    *,
    dimension: str = "all",
    value: str = "all",
    views: int = 100,
    lcp: float | None = 2000.0,
    with_error: int = 0,
    runs: int = 0,
    failures: int = 0,
    locations: list[dict[str, Any]] | None = None,
    entered: int = 0,
    completed: int = 0,
    dependencies: list[dict[str, Any]] | None = None,
    status: str = "healthy",
    scope: str = "none",
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    ws = iso(start)
    message = {
        "aggregate_id": f"checkout|{step}|{ws}|{dimension}|{value}",
        "journey": "checkout",
        "step": step,
        "window_start": ws,
        "window_end": iso(start + timedelta(minutes=1)),
        "segment_dimension": dimension,
        "segment_value": value,
        "rum": {
            "page_views": views,
            "sampled_views": views,
            "sessions": views // 2,
            "lcp_ms": _q(views, lcp),
            "inp_ms": _q(views, 120.0),
            "cls": _q(views, 0.05),
            "fcp_ms": _q(views, 1200.0),
            "ttfb_ms": _q(views, 400.0),
            "duration_ms": _q(views, 2500.0),
            "js_errors": with_error,
            "api_errors": 0,
            "views_with_error": with_error,
            "error_rate": round(with_error / views, 6) if views else 0.0,
            "apdex": 0.85 if views else None,
            "apdex_t_ms": 1200.0,
            "satisfied": int(views * 0.8),
            "tolerating": int(views * 0.1),
            "frustrated": views - int(views * 0.8) - int(views * 0.1),
            "conversions": 0,
            "conversion_value": 0.0,
            "dependencies": dependencies or [],
        },
        "synthetic": {
            "runs": runs,
            "failures": failures,
            "availability": round((runs - failures) / runs, 6) if runs else None,
            "duration_ms": _q(runs, 800.0 if runs else None),
            "dns_ms": _q(0, None),
            "connect_ms": _q(0, None),
            "tls_ms": _q(0, None),
            "ttfb_ms": _q(0, None),
            "transfer_ms": _q(0, None),
            "locations": locations or [],
            "failed_assertions": {},
        },
        "funnel": {
            "sessions_entered": entered,
            "sessions_completed": completed,
            "completion_rate": round(completed / entered, 6) if entered else None,
        },
        "status": status,
        "scope": scope,
        "reasons": reasons or [],
    }
    return JourneyAggregate.model_validate(message).model_dump(mode="json")


def aggregates(base: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(WINDOWS):
        start = base + timedelta(minutes=i)
        last = i == WINDOWS - 1
        rows.append(
            aggregate(
                start,
                "_journey",
                lcp=2000.0 + 100 * i,
                with_error=i,
                runs=2,
                failures=1 if last else 0,
                locations=[
                    {
                        "location": "eu-west-paris",
                        "runs": 1,
                        "failures": 0,
                        "availability": 1.0,
                        "duration_ms_p95": 700.0,
                    },
                    {
                        "location": "eu-central-frankfurt",
                        "runs": 1,
                        "failures": int(last),
                        "availability": 0.0 if last else 1.0,
                        "duration_ms_p95": 900.0,
                    },
                ],
                entered=50,
                completed=20,
                status="degraded" if last else "healthy",
                scope="rum_only" if last else "none",
                reasons=["rum.lcp_ms.p75 2900 > 2500"] if last else [],
            )
        )
        for step, entered in STEPS.items():
            deps = []
            if step == "cart":
                deps = [
                    {
                        "host": "cdn.localhost",
                        "provider": "cdn",
                        "requests": 100,
                        "failures": 1,
                        "failure_rate": 0.01,
                        "p75_ms": 120.0,
                    }
                ]
            if step == "payment":
                deps = [
                    {
                        "host": "pay.localhost",
                        "provider": "payment",
                        "requests": 30,
                        "failures": 6,
                        "failure_rate": 0.2,
                        "p75_ms": 900.0,
                    }
                ]
            rows.append(aggregate(start, step, views=entered, entered=entered, dependencies=deps))
        rows.append(
            aggregate(start, "_journey", dimension="country", value="FR", views=60, lcp=1800.0)
        )
        rows.append(
            aggregate(
                start,
                "_journey",
                dimension="country",
                value="DE",
                views=40,
                lcp=3200.0,
                with_error=4,
            )
        )
    return rows


def alert_events(base: datetime) -> list[dict[str, Any]]:
    example = REPO / "schemas/examples/experience.alerts/v1/checkout_incident_firing.json"
    firing = AlertEvent.model_validate_json(example.read_text()).model_dump(mode="json")
    firing["time"] = iso(base + timedelta(minutes=9, seconds=30))
    firing["data"]["started_at"] = iso(base + timedelta(minutes=5))
    for signal in firing["data"]["signals"]:
        signal["window_start"] = iso(base + timedelta(minutes=8))
    login = {
        **firing,
        "id": "login|1|firing",
        "subject": "login",
        "time": iso(base - timedelta(minutes=50)),
        "data": {
            **firing["data"],
            "fingerprint": "login-fp",
            "incident_id": "login-incident-1",
            "journey": "login",
            "journey_name": "Log in through SSO",
            "category": "authentication",
            "started_at": iso(base - timedelta(minutes=55)),
            "impact": {
                "sessions_affected": 10,
                "lost_completions": 0.0,
                "revenue_at_risk": 0.0,
                "currency": "EUR",
            },
        },
    }
    resolved = {
        **login,
        "id": "login|1|resolved",
        "type": "io.journeylens.alert.resolved",
        "time": iso(base - timedelta(minutes=20)),
        "data": {
            **login["data"],
            "status": "resolved",
            "resolved_at": iso(base - timedelta(minutes=20)),
        },
    }
    return [
        AlertEvent.model_validate(event).model_dump(mode="json")
        for event in (firing, login, resolved)
    ]


def anomaly(base: datetime) -> dict[str, Any]:
    example = REPO / "schemas/examples/experience.anomalies/v1/checkout_payment_error_rate.json"
    message = Anomaly.model_validate_json(example.read_text()).model_dump(mode="json")
    message["window_start"] = iso(base + timedelta(minutes=8))
    message["window_end"] = iso(base + timedelta(minutes=9))
    message["detected_at"] = iso(base + timedelta(minutes=9, seconds=30))
    message["anomaly_id"] = f"checkout|payment|rum.error_rate|{message['window_start']}"
    return message


def rum_events(base: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"ev-{i}",
            "kind": "page_view",
            "source": "journeylens",
            "timestamp": iso(base + timedelta(seconds=13 * i)),
            "received_at": iso(base + timedelta(seconds=13 * i)),
            "app": "demo-shop",
            "journey": "checkout",
            "step": ("cart", "payment")[i % 2],
            "session_id": f"s{i % 7}",
            "page_id": f"p{i}",
            "url": "http://127.0.0.1:8600/cart",
            "path": "/cart",
            "navigation_type": "navigate",
            "vitals": {"lcp_ms": 1000.0 + 37 * i, "ttfb_ms": 200.0 + i},
            "context": {
                "device_class": "desktop",
                "browser": "Chrome",
                "os": "Linux",
                "connection_type": "4g",
                "country": "FR",
            },
            "synthetic": i == 39,  # probe traffic: left out of the vitals rollup
            "sample_rate": 1.0,
            "schema_version": 1,
        }
        for i in range(40)
    ]


def insert(client: Client, table: str, messages: Iterable[Mapping[str, Any]]) -> None:
    flattener = RowFlattener(table_shape(client, table))
    if table == "alerts":
        rows = [flattener.alert_row(m) for m in messages]
    else:
        rows = [flattener.flatten(m) for m in messages]
    client.raw_insert(
        table, insert_block=to_json_each_row(rows), fmt="JSONEachRow", settings=INSERT_SETTINGS
    )


@dataclass(frozen=True)
class Seeded:
    base: datetime

    @property
    def at(self) -> datetime:
        return self.base + timedelta(minutes=WINDOWS)


def seed(client: Client, base: datetime | None = None) -> Seeded:
    base = base or base_hour()
    rows = aggregates(base)
    insert(client, "journey_aggregates", rows)
    # a replay of the journey-level windows: the same aggregate ids, inserted again
    insert(client, "journey_aggregates", [r for r in rows if r["step"] == "_journey"])
    insert(client, "alerts", alert_events(base))
    insert(client, "anomalies", [anomaly(base)])
    insert(client, "rum_events", rum_events(base))
    return Seeded(base)


def row_counts(client: Client) -> dict[str, int]:
    return {
        table: int(client.command(f"SELECT count() FROM {table}"))  # noqa: S608
        for table in TABLES
    }
