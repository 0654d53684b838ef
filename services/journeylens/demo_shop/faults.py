"""Fault injection for the demo services: latency and errors, scoped by path and audience.

Each service keeps its own rules, managed at run time through ``/_admin/faults``
(POST adds a rule, GET lists, DELETE clears; ``DELETE /_admin/faults/{id}`` removes one).
A rule applies to requests whose path starts with ``path_prefix`` and, when ``only`` is given,
that come from a country (``CF-IPCountry`` header), a device class (from the user agent) or a
user agent containing a token (``JourneyLensProbe`` hits only probes). Matching rules add their
latency; an error is returned with probability ``error_rate`` (deterministic at 0 and 1).
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

ADMIN_PATH = "/_admin/faults"
COUNTRY_HEADERS = ("cf-ipcountry", "x-country-code", "x-appengine-country")
DeviceClass = Literal["desktop", "mobile", "tablet"]

_TABLET = re.compile(r"iPad|Tablet|PlayBook|Silk|(Android(?!.*Mobile))", re.IGNORECASE)
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Android.*Mobile|Windows Phone", re.IGNORECASE)


class FaultScope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: str | None = Field(default=None, description="ISO code, e.g. 'FR'.")
    device_class: DeviceClass | None = None
    user_agent_contains: str | None = None


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0, le=120_000)
    error_rate: float = Field(default=0, ge=0, le=1)
    status: int = Field(default=500, ge=400, le=599)
    path_prefix: str = "/"
    only: FaultScope | None = None


class Fault(FaultRule):
    id: str


def device_class(user_agent: str) -> DeviceClass:
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def request_country(request: Request) -> str | None:
    for header in COUNTRY_HEADERS:
        value = request.headers.get(header)
        if value:
            return value.strip().upper()
    return None


class FaultRegistry:
    """The fault rules of one service (in memory: the demo runs in one process)."""

    def __init__(self, service: str, rng: random.Random | None = None) -> None:
        self.service = service
        self.faults: list[Fault] = []
        self._rng = rng or random.Random()  # noqa: S311 - fault sampling, not security

    def add(self, rule: FaultRule) -> Fault:
        fault = Fault(id=uuid.uuid4().hex[:8], **rule.model_dump())
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) < before

    def clear(self) -> int:
        count = len(self.faults)
        self.faults = []
        return count

    def matching(self, request: Request) -> list[Fault]:
        path = request.url.path
        if path.startswith(ADMIN_PATH):
            return []
        return [f for f in self.faults if path.startswith(f.path_prefix) and _in_scope(f, request)]

    def should_fail(self, fault: Fault) -> bool:
        if fault.error_rate >= 1:
            return True
        if fault.error_rate <= 0:
            return False
        return self._rng.random() < fault.error_rate


def _in_scope(fault: Fault, request: Request) -> bool:
    scope = fault.only
    if scope is None:
        return True
    user_agent = request.headers.get("user-agent", "")
    if scope.country and (request_country(request) or "") != scope.country.upper():
        return False
    if scope.device_class and device_class(user_agent) != scope.device_class:
        return False
    return not (scope.user_agent_contains and scope.user_agent_contains not in user_agent)


def install_faults(app: FastAPI, registry: FaultRegistry) -> None:
    """Add the fault middleware and the admin endpoints to a service."""

    @app.middleware("http")
    async def inject_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        faults = registry.matching(request)
        latency_ms = sum(f.latency_ms for f in faults)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        for fault in faults:
            if registry.should_fail(fault):
                return JSONResponse(
                    {"error": "injected fault", "fault": fault.id, "service": registry.service},
                    status_code=fault.status,
                    headers={"X-Injected-Fault": fault.id},
                )
        return await call_next(request)

    app.include_router(admin_router(registry))


def admin_router(registry: FaultRegistry) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PATH, tags=["admin"])

    @router.get("")
    async def list_faults() -> dict[str, object]:
        return {"service": registry.service, "faults": [f.model_dump() for f in registry.faults]}

    @router.post("", status_code=201)
    async def add_fault(rule: FaultRule) -> Fault:
        return registry.add(rule)

    @router.delete("")
    async def clear_faults() -> dict[str, object]:
        return {"service": registry.service, "cleared": registry.clear()}

    @router.delete("/{fault_id}")
    async def remove_fault(fault_id: str) -> Response:
        if registry.remove(fault_id):
            return Response(status_code=204)
        return JSONResponse({"error": f"no fault {fault_id!r}"}, status_code=404)

    return router
