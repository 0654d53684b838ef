"""The SSO service: ``/authorize`` as a browser redirect flow (GET form, POST form → redirect
back with a code) and as a JSON API (POST JSON → ``{"code": ...}``)."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from journeylens.demo_shop.common import service_app, sign
from journeylens.demo_shop.faults import FaultRegistry
from journeylens.demo_shop.settings import DemoShopSettings, Service

DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of the demo SSO
CODE_TTL_S = 300


def _login_form(redirect_uri: str, state: str, error: str | None = None) -> str:
    problem = f'<p class="error" id="sso-error">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo SSO · Sign in</title>
<style>body{{font:16px system-ui,sans-serif;background:#eef2f7;display:grid;place-items:center;
min-height:100vh;margin:0}}form{{background:#fff;padding:2rem;border-radius:12px;width:320px;
display:grid;gap:.8rem}}button{{background:#1d4ed8;color:#fff;border:0;border-radius:6px;
padding:.6rem}}.error{{color:#b91c1c}}</style></head>
<body><form method="post" action="/authorize" id="sso-form">
<h1>Demo SSO</h1>{problem}
<label>Email <input id="username" name="username" type="email" required></label>
<label>Password <input id="password" name="password" type="password" required></label>
<input type="hidden" name="redirect_uri" value="{escape(redirect_uri)}">
<input type="hidden" name="state" value="{escape(state)}">
<button id="sso-submit" type="submit">Sign in</button>
</form></body></html>"""


def sso_app(registry: FaultRegistry, settings: DemoShopSettings) -> FastAPI:
    app = service_app("sso", registry)
    secret = settings.secret.get_secret_value()
    shop = settings.url(Service.SHOP)

    def allowed(redirect_uri: str) -> bool:
        return redirect_uri.startswith(f"{shop}/")

    @app.get("/authorize", response_class=HTMLResponse)
    async def authorize_page(
        redirect_uri: str = f"{shop}/login/callback", state: str = ""
    ) -> Response:
        if not allowed(redirect_uri):
            return HTMLResponse("unknown redirect_uri", status_code=400)
        return HTMLResponse(_login_form(redirect_uri, state))

    @app.post("/authorize")
    async def authorize(request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = await request.json()
            except ValueError:
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            username, password = str(body.get("username", "")), str(body.get("password", ""))
            if not username or password != DEMO_PASSWORD:
                return JSONResponse({"error": "invalid_grant"}, status_code=401)
            code = sign(secret, username, CODE_TTL_S)
            return JSONResponse({"code": code, "token_type": "code", "expires_in": CODE_TTL_S})
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        redirect_uri = str(form.get("redirect_uri", f"{shop}/login/callback"))
        state = str(form.get("state", ""))
        if not allowed(redirect_uri):
            return HTMLResponse("unknown redirect_uri", status_code=400)
        if not username or password != DEMO_PASSWORD:
            return HTMLResponse(
                _login_form(redirect_uri, state, "Wrong email or password"), status_code=401
            )
        query = urlencode({"code": sign(secret, username, CODE_TTL_S), "state": state})
        return RedirectResponse(f"{redirect_uri}?{query}", status_code=303)

    return app
