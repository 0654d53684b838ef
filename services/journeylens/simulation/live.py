"""Real users, simulated: the traffic model's events sent through the collector's real endpoints.

Each minute of model traffic is sent as it happens (event time ≈ wall time), as the clients a
real site has would send it: most pages as our beacon JSON (``/v1/beacons``), some with their
Core Web Vitals reported by the unmodified web-vitals library (``/v1/web-vitals``). Requests
carry the visitor's User-Agent, a CDN country header and the shop's Origin.

Drills change the model: the simulator reads the demo shop's fault rules every few seconds
and turns the ones users would feel into model faults (a payment outage, a slow CDN in one
country, a deploy that slows mobile interactions, a third-party script throwing).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from journeylens.contracts.catalog import Catalog
from journeylens.demo_shop.drills import DEPLOY_MARKER, THIRD_PARTY_WIDGET
from journeylens.demo_shop.faults import ADMIN_PATH
from journeylens.simulation.traffic import (
    CdnSlowness,
    Fault,
    PaymentOutage,
    SlowInteractionDeploy,
    ThirdPartyScriptErrors,
    TrafficModel,
    TrafficProfile,
)

log = logging.getLogger(__name__)

VITAL_NAMES = {"lcp_ms": "LCP", "inp_ms": "INP", "cls": "CLS", "fcp_ms": "FCP", "ttfb_ms": "TTFB"}
NAV_KEYS = (
    "redirect", "dns", "connect", "tls", "request", "response",
    "dom_interactive", "dom_content_loaded", "load_event", "duration",
)  # fmt: skip
WEB_VITALS_SHARE = 0.2
CARRIES_STEP = frozenset({"web_vital", "error", "api_error", "conversion"})
"""Items the agent (sdk/browser) tags with the page's last step marker."""


@dataclass(frozen=True)
class LiveTarget:
    collector: str
    site_key: str
    origin: str
    shop_services: dict[str, str]
    """service name → base URL, to read the fault rules drills put there."""


def beacon_for_page(events: Sequence[dict[str, Any]], *, with_vitals: bool = True) -> bytes:
    """Our beacon JSON for the events of one page (see collector/formats/journeylens.py)."""
    first = events[0]
    context = first.get("context") or {}
    items: list[dict[str, Any]] = []
    marker: str | None = None
    for event in events:
        marker = event.get("step_event") or marker
        items.extend(_items(event, with_vitals, marker))
    beacon = {
        "v": 1,
        "sid": first["session_id"],
        "pid": first["page_id"],
        "url": first["url"],
        "ts": _epoch_ms(first["timestamp"]),
        "sr": first.get("sample_rate", 1.0),
        "nt": first.get("navigation_type", "navigate"),
        "conn": {
            "type": context.get("connection_type", "unknown"),
            "rtt": context.get("rtt_ms"),
            "downlink": context.get("downlink_mbps"),
        },
        "items": items,
    }
    return orjson.dumps(beacon)


def _items(event: dict[str, Any], with_vitals: bool, marker: str | None) -> list[dict[str, Any]]:
    """The beacon items of one event. As the agent does, errors, failed calls and conversions
    after a step marker of the page carry that ``step``; views are matched by their URL."""
    items = _event_items(event, with_vitals)
    if marker:
        for item in items:
            if item["type"] in CARRIES_STEP:
                item["step"] = marker
    return items


def _event_items(event: dict[str, Any], with_vitals: bool) -> list[dict[str, Any]]:
    ts = _epoch_ms(event["timestamp"])
    kind = event["kind"]
    items: list[dict[str, Any]] = []
    if event.get("step_event"):
        items.append({"type": "step", "ts": ts, "name": event["step_event"]})
    if kind in ("page_view", "soft_navigation"):
        nav = event.get("navigation") or {}
        item: dict[str, Any] = {
            "type": kind,
            "ts": ts,
            "url": event["url"],
            "nav": {k: nav[f"{k}_ms"] for k in NAV_KEYS if nav.get(f"{k}_ms") is not None},
            "res": [
                {
                    "host": d["host"],
                    "n": d["requests"],
                    "fail": d.get("failures", 0),
                    "dur": d.get("total_duration_ms", 0),
                    "max": d.get("max_duration_ms", 0),
                    "bytes": d.get("transfer_bytes", 0),
                }
                for d in event.get("dependencies") or ()
                if d.get("requests")
            ],
        }
        if with_vitals:
            vitals = event.get("vitals") or {}
            item["vitals"] = {k.removesuffix("_ms"): v for k, v in vitals.items() if v is not None}
        items.append(item)
    elif kind == "conversion":
        items.append(
            {
                "type": "conversion",
                "ts": ts,
                "value": event.get("conversion_value") or 0,
                "currency": event.get("currency") or "EUR",
            }
        )
    for error in event.get("errors") or ():
        items.append(
            {
                "type": "error",
                "ts": ts,
                "message": error["message"],
                "source": error.get("source"),
                "line": error.get("line"),
                "col": error.get("column"),
            }
        )
    for api in event.get("api_errors") or ():
        items.append(
            {
                "type": "api_error",
                "ts": ts,
                "url": api["url"],
                "method": api.get("method", "GET"),
                "status": api["status"],
                "dur": api.get("duration_ms"),
            }
        )
    return items


def web_vitals_for_page(event: dict[str, Any]) -> bytes:
    """The page's vitals as the web-vitals library reports them (plus the integrator's ids)."""
    vitals = event.get("vitals") or {}
    metric_prefix = f"v5-{_epoch_ms(event['timestamp'])}"
    return orjson.dumps(
        [
            {
                "name": name,
                "value": vitals[key],
                "delta": vitals[key],
                "rating": "good",
                "id": f"{metric_prefix}-{event['page_id']}-{name}",
                "navigationType": "navigate",
                "pageId": event["page_id"],
                "sessionId": event["session_id"],
                "url": event["url"],
            }
            for key, name in VITAL_NAMES.items()
            if vitals.get(key) is not None
        ]
    )


def _epoch_ms(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def faults_from_rules(rules: dict[str, list[dict[str, Any]]], now: float) -> list[Fault]:
    """Model faults users would feel, from the demo services' active fault rules."""
    faults: list[Fault] = []
    for service, service_rules in rules.items():
        for rule in service_rules:
            only = rule.get("only") or {}
            path = rule.get("path_prefix", "/")
            if only.get("user_agent_contains"):
                continue  # aimed at probes: users are not affected
            if service == "payment" and rule.get("error_rate", 0) > 0:
                faults.append(PaymentOutage(now, failure_share=rule["error_rate"]))
            elif service == "cdn" and path.startswith(THIRD_PARTY_WIDGET):
                faults.append(ThirdPartyScriptErrors(now))
            elif service == "cdn" and rule.get("latency_ms", 0) > 0:
                country = only.get("country") or "FR"
                faults.append(CdnSlowness(now, country=country, delay_ms=rule["latency_ms"]))
            elif service == "shop" and path.startswith(DEPLOY_MARKER):
                faults.append(
                    SlowInteractionDeploy(now, device_class=only.get("device_class") or "mobile")
                )
    return faults


def pages_in_order(events: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The events grouped by page (one beacon each), in the order the pages were shown."""
    pages: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        pages[event["page_id"]].append(event)
    return sorted(pages.values(), key=lambda page: page[0]["timestamp"])


def page_due(page: Sequence[dict[str, Any]]) -> float:
    """When the page's beacon leaves the browser (epoch seconds): when the page was shown."""
    return _epoch_ms(page[0]["timestamp"]) / 1000


class BeaconSender:
    """Sends the beacons of one page to the collector's real endpoints, as a browser would."""

    def __init__(self, target: LiveTarget, rng: random.Random) -> None:
        self.target = target
        self.rng = rng
        self.sent = 0
        self.rejected = 0

    async def send_page(self, client: httpx.AsyncClient, page: list[dict[str, Any]]) -> None:
        first = page[0]
        headers = {
            "User-Agent": first.get("user_agent") or "Mozilla/5.0",
            "CF-IPCountry": (first.get("context") or {}).get("country", "FR"),
            "Origin": self.target.origin,
            "Content-Type": "text/plain;charset=UTF-8",
        }
        params = {"k": self.target.site_key}
        via_web_vitals = first["kind"] == "page_view" and self.rng.random() < WEB_VITALS_SHARE
        try:
            response = await client.post(
                f"{self.target.collector}/v1/beacons",
                content=beacon_for_page(page, with_vitals=not via_web_vitals),
                headers=headers,
                params=params,
            )
            self._count(response)
            if via_web_vitals:
                response = await client.post(
                    f"{self.target.collector}/v1/web-vitals",
                    content=web_vitals_for_page(first),
                    headers=headers,
                    params=params,
                )
                self._count(response)
        except httpx.HTTPError as exc:
            self.rejected += 1
            log.warning("collector unreachable: %s", exc)

    def _count(self, response: httpx.Response) -> None:
        if response.status_code < 300:
            self.sent += 1
        else:
            self.rejected += 1
            log.warning("collector answered %s: %s", response.status_code, response.text[:200])


class LiveSimulator:
    def __init__(
        self, catalog: Catalog, target: LiveTarget, sessions_per_minute: float, seed: int
    ) -> None:
        profile = TrafficProfile(peak_sessions_per_minute=sessions_per_minute)
        self.model = TrafficModel(catalog, profile, seed=seed)
        self.target = target
        self.rng = random.Random(seed)  # noqa: S311 - traffic shaping, not secrets
        self.sender = BeaconSender(target, self.rng)

    @property
    def sent(self) -> int:
        return self.sender.sent

    @property
    def rejected(self) -> int:
        return self.sender.rejected

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            minute = int(time.time() // 60 * 60)
            while not stop.is_set():
                self.model.faults = faults_from_rules(await self._rules(client), minute)
                events, _probe_results = self.model.minute(minute)  # real probes run for real
                await self._send_minute(client, events, minute, stop)
                minute += 60

    async def _rules(self, client: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
        rules: dict[str, list[dict[str, Any]]] = {}
        for service, base in self.target.shop_services.items():
            try:
                response = await client.get(base + ADMIN_PATH)
                body = response.json()
                rules[service] = body.get("faults", []) if isinstance(body, dict) else []
            except (httpx.HTTPError, ValueError):
                rules[service] = []
        return rules

    async def _send_minute(
        self,
        client: httpx.AsyncClient,
        events: list[dict[str, Any]],
        minute: int,
        stop: asyncio.Event,
    ) -> None:
        ordered = pages_in_order(events)
        for page in ordered:
            delay = page_due(page) - time.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return
                except TimeoutError:
                    pass
            await self.sender.send_page(client, page)
        log.info(
            "minute %d: %d pages sent (%d rejected so far)", minute, len(ordered), self.rejected
        )
