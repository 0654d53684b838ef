"""The dashboard: a static page (built assets in ``api/dashboard/``) that calls the API.

No asset comes from elsewhere at run time (the Content-Security-Policy says so). The page asks
for a token once and keeps it in localStorage; when ``ApiSettings.dev_token`` is set the page
gets it from a ``journeylens_dev_token`` cookie instead (local demos only).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

ASSETS = Path(__file__).resolve().parent.parent / "dashboard"
DEV_TOKEN_COOKIE = "journeylens_dev_token"  # noqa: S105 - a cookie name
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


def _page(request: Request) -> HTMLResponse:
    html = (ASSETS / "index.html").read_text(encoding="utf-8")
    response = HTMLResponse(html, headers={"Content-Security-Policy": CSP})
    dev_token = request.app.state.dev_token
    if dev_token:
        response.set_cookie(DEV_TOKEN_COOKIE, dev_token, samesite="strict", httponly=False)
    return response


@router.get("/")
def overview(request: Request) -> HTMLResponse:
    return _page(request)


@router.get("/journeys/{journey_id}")
def journey_page(request: Request, journey_id: str) -> HTMLResponse:
    return _page(request)
