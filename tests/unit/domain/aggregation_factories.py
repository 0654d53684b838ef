"""RUM events and probe results as the worker gets them: contract-valid JSON dicts."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from journeylens.contracts.catalog import load_catalog
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.contracts.synthetic_results_v1 import SyntheticResult
from journeylens.domain.catalog_view import CatalogView

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
T0_S = int(T0.timestamp())
_ids = itertools.count()


@functools.cache
def demo_view() -> CatalogView:
    return CatalogView.from_catalog(load_catalog(REPO / "infra" / "catalog" / "demo-shop.yaml"))


def _json(model: Any) -> dict[str, Any]:
    """Exactly what orjson gives the worker for a message written from the model."""
    result: dict[str, Any] = orjson.loads(orjson.dumps(model.model_dump(mode="json")))
    return result


def rum(
    *,
    at: float = 0.0,
    journey: str = "checkout",
    step: str = "cart",
    kind: str = "page_view",
    session: str = "s1",
    page: str | None = None,
    lcp: float | None = None,
    inp: float | None = None,
    cls: float | None = None,
    fcp: float | None = None,
    ttfb: float | None = None,
    duration: float | None = None,
    js_errors: int = 0,
    api_errors: int = 0,
    country: str = "FR",
    device: str = "desktop",
    browser: str = "Chrome",
    connection: str = "4g",
    sample_rate: float = 1.0,
    synthetic: bool = False,
    conversion_value: float | None = None,
    dependencies: list[dict[str, Any]] | None = None,
    network_error: dict[str, Any] | None = None,
    url: str = "http://127.0.0.1:8600/cart",
) -> dict[str, Any]:
    """One ``rum.beacons.v1`` event at ``T0 + at`` seconds."""
    n = next(_ids)
    ts = T0 + timedelta(seconds=at)
    event = RumEvent.model_validate(
        {
            "event_id": f"e{n}",
            "kind": kind,
            "source": "journeylens",
            "timestamp": ts,
            "received_at": ts,
            "app": "demo-shop",
            "journey": journey,
            "step": step,
            "session_id": session,
            "page_id": page or f"p{n}",
            "url": url,
            "vitals": {"lcp_ms": lcp, "inp_ms": inp, "cls": cls, "fcp_ms": fcp, "ttfb_ms": ttfb},
            "navigation": None if duration is None else {"duration_ms": duration},
            "errors": [{"message": "boom"}] * js_errors,
            "api_errors": [{"url": "/api/cart", "status": 500}] * api_errors,
            "dependencies": dependencies or [],
            "network_error": network_error,
            "context": {
                "country": country,
                "device_class": device,
                "browser": browser,
                "connection_type": connection,
            },
            "synthetic": synthetic,
            "sample_rate": sample_rate,
            "conversion_value": conversion_value,
        }
    )
    return _json(event)


def step_result(
    step: str,
    *,
    status: str = "passed",
    duration: float = 100.0,
    http_status: int | None = 200,
    message: str | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    failed = []
    if message is not None:
        failed = [
            {"assertion": "status == 200", "expected": "200", "actual": "500", "message": message}
        ]
    return {
        "step": step,
        "kind": "http",
        "status": status,
        "started_at": T0,
        "duration_ms": duration,
        "http_status": http_status,
        "timings": timings or {},
        "failed_assertions": failed,
    }


def probe_run(
    steps: list[dict[str, Any]],
    *,
    at: float = 0.0,
    journey: str = "checkout",
    location: str = "local-1",
    status: str | None = None,
    duration: float | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One ``synthetic.results.v1`` run at ``T0 + at`` seconds."""
    n = next(_ids)
    started = T0 + timedelta(seconds=at)
    failed = next((s["step"] for s in steps if s["status"] == "failed"), None)
    if status is None:
        status = "failed" if failed else "passed"
    total = duration if duration is not None else sum(s["duration_ms"] for s in steps)
    for s in steps:
        s["started_at"] = started
    result = SyntheticResult.model_validate(
        {
            "run_id": f"r{n}",
            "journey": journey,
            "location": location,
            "status": status,
            "started_at": started,
            "finished_at": started + timedelta(milliseconds=total),
            "duration_ms": total,
            "steps": steps,
            "failed_step": failed,
            "error": error,
        }
    )
    return _json(result)


def checkout_run(
    *, at: float = 0.0, pay_status: int = 200, location: str = "local-1"
) -> dict[str, Any]:
    """A checkout probe run whose payment step passes (200) or fails (anything else)."""
    ok = pay_status == 200
    steps = [
        step_result("cart", duration=120, timings={"dns_ms": 2, "connect_ms": 3, "ttfb_ms": 80}),
        step_result("checkout-page", duration=200),
        step_result(
            "payment",
            status="passed" if ok else "failed",
            duration=300,
            http_status=pay_status,
            message=None if ok else f"status {pay_status} != 200",
        ),
        step_result(
            "confirmation", status="passed" if ok else "skipped", duration=150 if ok else 0
        ),
    ]
    return probe_run(steps, at=at, location=location)
