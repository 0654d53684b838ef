"""What every demo service shares: the app skeleton (CORS, resource timing, faults) and codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from journeylens.demo_shop.faults import FaultRegistry, install_faults


def service_app(name: str, registry: FaultRegistry) -> FastAPI:
    """A FastAPI app with fault injection, CORS for the shop pages and Timing-Allow-Origin.

    CORS is the outermost layer so injected errors still reach page scripts as HTTP errors.
    """
    app = FastAPI(title=f"Demo {name}", docs_url=None, redoc_url=None, openapi_url=None)
    install_faults(app, registry)

    @app.middleware("http")
    async def resource_timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Timing-Allow-Origin"] = "*"
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"service": name, "status": "ok"}

    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Injected-Fault"],
    )
    return app


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, subject: str, ttl_s: float = 300) -> str:
    """A signed, expiring token naming a subject (SSO codes, shop sessions)."""
    payload = _b64(f"{subject}|{int(time.time() + ttl_s)}".encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{payload}.{mac}"


def verify(secret: str, token: str | None) -> str | None:
    """The subject of a valid, unexpired token; None otherwise."""
    if not token or "." not in token:
        return None
    payload, mac = token.rsplit(".", 1)
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        subject, expires = _unb64(payload).decode().rsplit("|", 1)
        if int(expires) < time.time():
            return None
    except ValueError:
        return None
    return subject
