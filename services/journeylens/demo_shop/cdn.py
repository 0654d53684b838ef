"""The CDN: static assets of the shop pages (stylesheet, script, product images)."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI, Response

from journeylens.demo_shop.common import service_app
from journeylens.demo_shop.faults import FaultRegistry

CACHE = {"Cache-Control": "public, max-age=3600"}

APP_CSS = """\
:root { --ink: #1d2330; --accent: #2f6fde; --muted: #6b7280; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--ink); background: #f7f8fa; }
header { display: flex; gap: 1.5rem; align-items: center; padding: 1rem 2rem; background: #fff;
  border-bottom: 1px solid #e5e7eb; }
header a { color: var(--ink); text-decoration: none; }
main { max-width: 960px; margin: 2rem auto; padding: 0 1rem; }
.hero { width: 100%; height: 320px; object-fit: cover; border-radius: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 1rem; }
.card { background: #fff; border-radius: 10px; padding: 1rem; border: 1px solid #e5e7eb; }
.card img { width: 100%; height: 140px; object-fit: cover; border-radius: 6px; }
button, .button { background: var(--accent); color: #fff; border: 0; border-radius: 6px;
  padding: .6rem 1.2rem; font-size: 1rem; cursor: pointer; text-decoration: none; }
.error { color: #b91c1c; }
.muted { color: var(--muted); }
"""

APP_JS = """\
document.documentElement.classList.add("js");
document.addEventListener("click", function (event) {
  var target = event.target.closest("[data-track]");
  if (target && window.jl) { window.jl("step", target.getAttribute("data-track")); }
});
"""

_COLOURS = ("#2f6fde", "#de7a2f", "#2fa36b", "#a32f8f", "#d4b106", "#4b5563")


def image_svg(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    colour = _COLOURS[digest[0] % len(_COLOURS)]
    label = name.replace("-", " ")[:24]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="960" height="320" viewBox="0 0 960 320">'
        f'<rect width="960" height="320" fill="{colour}"/>'
        f'<circle cx="{120 + digest[1] * 3}" cy="160" r="{60 + digest[2] % 60}" fill="#fff" '
        'fill-opacity=".25"/>'
        f'<text x="40" y="290" font-family="sans-serif" font-size="36" fill="#fff">{label}</text>'
        "</svg>"
    )


def cdn_app(registry: FaultRegistry) -> FastAPI:
    app = service_app("cdn", registry)

    @app.get("/static/app.css")
    async def stylesheet() -> Response:
        return Response(APP_CSS, media_type="text/css", headers=CACHE)

    @app.get("/static/app.js")
    async def script() -> Response:
        return Response(APP_JS, media_type="application/javascript", headers=CACHE)

    @app.get("/images/{name}.svg")
    async def image(name: str) -> Response:
        if not name.replace("-", "").isalnum() or len(name) > 64:
            return Response("not found", status_code=404)
        return Response(image_svg(name), media_type="image/svg+xml", headers=CACHE)

    return app
