"""The collector: the HTTP ingestion edge for RUM beacons in every supported format.

Each ingestion route is thin: guard (site key, origin, rate limit) → read the body (bounded)
→ the format's parser → enrichment → the sink, which answers only once Kafka acknowledged.
Hot routes are answered from the raw ASGI call (no pydantic request models, no dependency
injection, no Starlette Request or Response objects): the body is read straight from
``receive`` into the parser, and a success goes out as two ASGI messages with prebuilt headers.

=====================  ==========  =========================================================
route                  format      site key
=====================  ==========  =========================================================
POST /v1/beacons       journeylens ``?k=`` or ``X-JourneyLens-Key``
POST /v1/web-vitals    web-vitals  ``?k=`` or ``X-JourneyLens-Key`` (text/plain or JSON)
GET|POST /v1/boomerang boomerang   ``?k=`` (query string or urlencoded/multipart body)
POST /v1/logs          otlp-logs   ``X-JourneyLens-Key``/``x-api-key`` header or ``?k=``
POST /v1/traces        otlp-traces same as logs
POST /v1/faro          faro        ``x-api-key`` header or ``?k=``
POST /v1/reports       reporting-  ``?k=`` (application/reports+json)
                       api
GET /rum.js                        the built browser agent (ETag, Cache-Control)
GET /healthz, /readyz              liveness; readiness = Kafka connected
=====================  ==========  =========================================================

Answers: 202 (POST; ``{"accepted": n, "rejected": m}``), 204 (boomerang GET), 200 with an
OTLP ``partialSuccess`` body (OTLP). Errors are problem+json: 400 malformed body, 401/403 key
or origin, 413 body or batch too large, 429 rate limited, 503 Kafka unavailable (Retry-After).
Rejected items of a batch go to the dead-letter topic with the reason and their raw bytes; a
malformed body is dead-lettered too (best effort) before the 400.
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlencode

import orjson
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from journeylens.collector.enrich import PROBE_HEADER, Enricher
from journeylens.collector.formats.base import MalformedBody, Parser, Rejected, RequestMeta
from journeylens.collector.guard import Site, SiteGuard
from journeylens.collector.sink import EventSink, SinkUnavailable, dead_letter
from journeylens.contracts.catalog import Catalog
from journeylens.domain.catalog_match import CatalogMatcher
from journeylens.problems import Problem
from journeylens.settings import CollectorSettings

log = logging.getLogger(__name__)

AGENT_BUILD_HINT = "npm --prefix sdk/browser ci && npm --prefix sdk/browser run build"
KEY_HEADERS = ("x-journeylens-key", "x-api-key")
CORS_ALLOW_HEADERS = (
    "content-type, x-journeylens-key, x-api-key, x-journeylens-probe, traceparent, tracestate"
)
CORS_MAX_AGE = "86400"
AGENT_CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"


def default_agent_path() -> Path:
    """Where ``npm run build`` in sdk/browser puts the agent, in this source tree."""
    return Path(__file__).resolve().parents[3] / "sdk" / "browser" / "dist" / "rum.js"


@dataclass(frozen=True, slots=True)
class Ingestion:
    """One ingestion route: its path, methods, parser and how it answers success."""

    path: str
    fmt: str
    methods: tuple[str, ...] = ("POST",)
    otlp: bool = False


INGESTION_ROUTES = (
    Ingestion("/v1/beacons", "journeylens"),
    Ingestion("/v1/web-vitals", "web-vitals"),
    Ingestion("/v1/boomerang", "boomerang", ("GET", "POST")),
    Ingestion("/v1/logs", "otlp-logs", otlp=True),
    Ingestion("/v1/traces", "otlp-traces", otlp=True),
    Ingestion("/v1/faro", "faro"),
    Ingestion("/v1/reports", "reporting-api"),
)


# ------------------------------------------------------------------------- the handler

Answer = Callable[[Scope, Receive, Send], Awaitable[None]]
"""What an ingestion endpoint answers: an ASGI app (a :class:`RawAnswer` or a Response)."""
HotEndpoint = Callable[[Scope, Receive], Awaitable[Answer]]
CORS_CACHE_SIZE = 1024
ANSWER_CACHE_SIZE = 4096
QUERY_KEY_CACHE_SIZE = 1024


class RawAnswer:
    """A success answer sent as two raw ASGI messages: the ingestion path's replacement for a
    Starlette ``Response``, whose header handling costs several microseconds a request."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @classmethod
    def json(cls, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> RawAnswer:
        headers = [
            (b"content-length", str(len(body)).encode("ascii")),
            (b"content-type", b"application/json"),
            *extra,
        ]
        return cls(status, headers, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def _routed(endpoint: HotEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` as a Starlette route endpoint (requests that reach the router)."""

    async def via_router(request: Request) -> Response:
        answer = await endpoint(request.scope, request.receive)
        if isinstance(answer, Response):
            return answer
        assert isinstance(answer, RawAnswer)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in answer.headers}
        headers.pop("content-length", None)
        return Response(answer.body, answer.status, headers)

    via_router.__name__ = getattr(endpoint, "__name__", "ingest")
    return via_router


class Collector:
    """State shared by the ingestion routes of one process."""

    def __init__(
        self,
        settings: CollectorSettings,
        catalog: Catalog,
        sink: EventSink,
        parsers: Mapping[str, Parser],
        *,
        enricher: Enricher | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.parsers = parsers
        self.guard = SiteGuard.from_apps(
            catalog.apps, settings.rate_limit_per_s, settings.rate_limit_burst
        )
        self.enricher = enricher or Enricher(settings, CatalogMatcher(catalog))
        self.clock = clock or _utc_now
        self.max_body = settings.max_body_bytes
        self.max_items = settings.max_batch_items
        self.country_header = self.enricher.country_header
        self._cors_cache: dict[str, list[tuple[bytes, bytes]]] = {}
        self._query_keys: dict[bytes, str | None] = {}
        """Query string → its site key (``k``), for short query strings."""
        self._answers: dict[tuple[int, int, str | None], RawAnswer] = {}
        """202 answers by (accepted, rejected, origin): immutable, shared by requests."""
        self._wanted_headers = frozenset(
            name.encode("latin-1")
            for name in (*_INGEST_HEADERS, PROBE_HEADER, self.country_header)
            if name
        )

    def _headers(self, scope: Scope) -> dict[str, str]:
        """The request headers ingestion reads, in one pass (first value of each wins)."""
        wanted = self._wanted_headers
        found: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in wanted:
                found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        return found

    def endpoint(self, route: Ingestion) -> HotEndpoint:
        """The route's handler on the raw ASGI call: ``(scope, receive)`` → the answer (an
        ASGI app to call with ``(scope, receive, send)``)."""
        parser = self.parsers[route.fmt]

        async def ingest(scope: Scope, receive: Receive) -> Answer:
            headers = self._headers(scope)
            origin = headers.get("origin")
            try:
                return await self._ingest(scope, receive, headers, route, parser, origin)
            except Problem as problem:
                return problem.response(scope["path"], self._cors(origin))

        ingest.__name__ = f"ingest_{route.fmt.replace('-', '_')}"
        return ingest

    async def _ingest(
        self,
        scope: Scope,
        receive: Receive,
        headers: Mapping[str, str],
        route: Ingestion,
        parser: Parser,
        origin: str | None,
    ) -> Answer:
        site = self._site(scope, headers)
        self.guard.check_origin(site, origin)
        self.guard.limit(site)
        body = await self._body(scope, receive, headers)
        content_type = headers.get("content-type")
        meta = RequestMeta(
            app=site.app.id,
            received_at=self.clock(),
            user_agent=headers.get("user-agent"),
            content_type=content_type,
            sample_rate=site.app.sample_rate,
        )
        try:
            if route.fmt == "boomerang" and (content_type or "").startswith("multipart/"):
                result = parser(await _form_as_query(scope, body), meta)
            else:
                result = parser(body, meta)
        except MalformedBody as exc:
            await self._dead_letter_body(route, meta, body, str(exc))
            raise Problem(400, "malformed-body", "Malformed body", str(exc)[:500]) from None
        except Exception as exc:  # a parser bug must not lose the body nor answer 5xx
            log.exception("%s parser failed on a %d-byte body", route.fmt, len(body))
            await self._dead_letter_body(route, meta, body, f"parser error: {exc!r}")
            raise Problem(
                400, "unparseable-body", "Unparseable body", "the body could not be parsed"
            ) from None
        count = len(result.events) + len(result.rejected)
        if count > self.max_items:
            raise Problem(
                413,
                "batch-too-large",
                "Batch too large",
                f"{count} items in one request; the limit is {self.max_items}",
            )
        ctx = self.enricher.context(
            user_agent=meta.user_agent,
            probe_header=headers.get(PROBE_HEADER),
            country_header=headers.get(self.country_header) if self.country_header else None,
            client_ip=_client_ip(scope),
        )
        self.enricher.enrich(result.events, ctx)
        dead = [
            dead_letter(
                item,
                source=route.fmt,
                received_at=meta.received_at,
                app=site.app.id,
                content_type=content_type,
            )
            for item in result.rejected
        ]
        try:
            await self.sink.publish(result.events, dead)
        except SinkUnavailable as exc:
            raise Problem(
                503,
                "kafka-unavailable",
                "Temporarily unavailable",
                f"{exc.reason}; retry later",
                headers={"Retry-After": str(exc.retry_after_s)},
            ) from None
        return self._accepted(route, scope, len(result.events), result.rejected, origin)

    def _site(self, scope: Scope, headers: Mapping[str, str]) -> Site:
        key = headers.get("x-journeylens-key") or headers.get("x-api-key")
        if not key:
            query: bytes = scope.get("query_string", b"")
            key = self._query_keys.get(query)
            if key is None:  # agents repeat the same query string (`?k=<site key>`)
                key = _query_key(query)
                if len(query) <= 256:
                    if len(self._query_keys) >= QUERY_KEY_CACHE_SIZE:
                        self._query_keys.clear()
                    self._query_keys[query] = key
        return self.guard.site(key)

    async def _body(self, scope: Scope, receive: Receive, headers: Mapping[str, str]) -> bytes:
        if scope["method"] == "GET":
            query: bytes = scope.get("query_string", b"")
            return query
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Problem(400, "bad-content-length", "Bad Content-Length", declared[:40])
            if int(declared) > self.max_body:
                raise _too_large(int(declared), self.max_body)
        body = await _read_bounded(receive, self.max_body)
        encoding = headers.get("content-encoding")
        if encoding and encoding.lower() not in ("identity",):
            body = _decompress(body, encoding.lower(), self.max_body)
        return body

    async def _dead_letter_body(
        self, route: Ingestion, meta: RequestMeta, body: bytes, reason: str
    ) -> None:
        letter = dead_letter(
            Rejected(f"malformed body: {reason}", body),
            source=route.fmt,
            received_at=meta.received_at,
            app=meta.app,
            content_type=meta.content_type,
        )
        try:
            await self.sink.publish((), (letter,))
        except SinkUnavailable:
            log.warning("could not dead-letter a malformed %s body (Kafka unavailable)", route.fmt)

    def _accepted(
        self,
        route: Ingestion,
        scope: Scope,
        accepted: int,
        rejected: list[Rejected],
        origin: str | None,
    ) -> Answer:
        cors = self._cors_raw(origin)
        if route.otlp:
            body: dict[str, object] = {}
            if rejected:
                kind = "rejectedLogRecords" if route.fmt == "otlp-logs" else "rejectedSpans"
                body["partialSuccess"] = {
                    kind: len(rejected),
                    "errorMessage": "; ".join(sorted({r.reason for r in rejected}))[:500],
                }
            return RawAnswer.json(200, orjson.dumps(body), cors)
        if scope["method"] == "GET":
            return RawAnswer(204, cors)
        key = (accepted, len(rejected), origin)
        answer = self._answers.get(key)
        if answer is None:  # answers repeat: the same counts from the same origins
            payload = orjson.dumps({"accepted": accepted, "rejected": len(rejected)})
            answer = RawAnswer.json(202, payload, cors)
            if len(self._answers) >= ANSWER_CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def _cors_raw(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """The CORS response headers for ``origin``, encoded once per origin (a site sends
        from a handful of origins; the cache is bounded all the same)."""
        if origin is None:
            return []
        raw = self._cors_cache.get(origin)
        if raw is None:
            if len(self._cors_cache) >= CORS_CACHE_SIZE:
                self._cors_cache.clear()
            cors = self._cors(origin) or {}
            raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in cors.items()]
            self._cors_cache[origin] = raw
        return raw

    def _cors(self, origin: str | None) -> dict[str, str] | None:
        if origin is None:
            return None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    async def preflight(self, request: Request) -> Response:
        """CORS preflight: the key is only known when it is in the query string."""
        origin = request.headers.get("origin")
        if origin is None:
            return Response(status_code=204)
        key = request.query_params.get("k")
        site = self.guard.sites.get(key) if key else None
        allowed = site.allows(origin) if site is not None else self.guard.any_site_allows(origin)
        if not allowed:
            return Problem(
                403, "origin-not-allowed", "Origin not allowed", f"origin {origin!r} may not send"
            ).response(request.url.path)
        requested = request.headers.get("access-control-request-headers")
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": requested or CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": CORS_MAX_AGE,
                "Vary": "Origin, Access-Control-Request-Headers",
            },
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


_INGEST_HEADERS = (
    "origin",
    "user-agent",
    "content-type",
    "content-length",
    "content-encoding",
    *KEY_HEADERS,
)


def _query_key(query: bytes) -> str | None:
    """The ``k`` parameter of a query string (the first one), as ``parse_qs`` would give it."""
    if not query:
        return None
    for part in query.split(b"&"):
        if part.startswith(b"k="):
            raw = part[2:].decode("latin-1")
            return unquote_plus(raw) if "%" in raw or "+" in raw else raw
    return None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _too_large(size: int, limit: int) -> Problem:
    return Problem(
        413, "body-too-large", "Body too large", f"body of {size}+ bytes; the limit is {limit}"
    )


async def _read_bounded(receive: Receive, limit: int) -> bytes:
    """The request body from the ASGI ``receive``, at most ``limit`` bytes (else 413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the client went away
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


async def _form_as_query(scope: Scope, body: bytes) -> bytes:
    """boomerang may post FormData: the urlencoded equivalent, for the boomerang parser."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(scope, replay).form(max_files=0, max_fields=2000) as form:
            pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
    except (HTTPException, MultiPartException, ValueError) as exc:
        raise MalformedBody(f"unreadable multipart form: {exc}") from None
    return urlencode(pairs).encode("ascii")


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(encoding)
    if wbits is None:
        raise Problem(
            415,
            "unsupported-encoding",
            "Unsupported Content-Encoding",
            f"content-encoding {encoding[:40]!r} is not supported (gzip, deflate)",
        )
    decompressor = zlib.decompressobj(wbits)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Problem(400, "malformed-body", "Malformed body", f"bad {encoding}: {exc}") from None
    if len(data) > limit or decompressor.unconsumed_tail:
        raise _too_large(len(data), limit)
    return data


# ------------------------------------------------------------------------- the agent


class AgentScript:
    """The built ``rum.js``, re-read when the file changes (so a rebuild needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._body = b""
        self._etag = ""

    def _load(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError:
            return False
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._body = self.path.read_bytes()
            self._etag = '"' + hashlib.sha256(self._body).hexdigest()[:32] + '"'
            self._stamp = stamp
        return True

    async def serve(self, request: Request) -> Response:
        if not self._load():
            return Problem(
                404,
                "agent-not-built",
                "Browser agent not built",
                f"{self.path} does not exist: run `{AGENT_BUILD_HINT}` (or point the collector "
                "at a built rum.js with --agent-js)",
            ).response(request.url.path)
        headers = {
            "ETag": self._etag,
            "Cache-Control": AGENT_CACHE_CONTROL,
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Access-Control-Allow-Origin": "*",
        }
        if request.headers.get("if-none-match") == self._etag:
            return Response(status_code=304, headers=headers)
        return Response(self._body, 200, headers, "application/javascript; charset=utf-8")


# ------------------------------------------------------------------------- the app


class CollectorApp(FastAPI):
    """FastAPI, with the ingestion routes answered straight from the ASGI call.

    An ingestion request (exact path and method) goes to its endpoint without the middleware
    stack and router walk (about a third of a small beacon's server time): the endpoints
    already answer every expected error as problem+json, and an unexpected one is logged and
    answered 500 problem+json here. Everything else (preflight, /rum.js, health, 404 and 405
    answers, lifespan) goes through FastAPI as usual.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot_routes: dict[tuple[str, str], HotEndpoint] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.hot_routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                try:
                    response = await endpoint(scope, receive)
                except Exception:
                    log.exception("%s %s failed", scope["method"], scope["path"])
                    response = Problem(
                        500,
                        "internal-error",
                        "Internal error",
                        "the collector failed on this request; it is logged, retry later",
                    ).response(scope["path"])
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: CollectorSettings,
    catalog: Catalog,
    producer: EventSink,
    *,
    parsers: Mapping[str, Parser] | None = None,
    agent_path: Path | None = None,
    enricher: Enricher | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The collector app. The sink is started and stopped with the app's lifespan."""
    if parsers is None:
        from journeylens.collector.formats import PARSERS

        parsers = PARSERS
    collector = Collector(settings, catalog, producer, parsers, enricher=enricher, clock=clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        try:
            yield
        finally:
            await producer.stop()

    app = CollectorApp(
        title="JourneyLens collector",
        summary="RUM beacon ingestion: our agent, web-vitals, boomerang, OTLP, Faro, Reporting API",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.collector = collector
    for route in INGESTION_ROUTES:
        endpoint = collector.endpoint(route)
        app.router.routes.append(Route(route.path, _routed(endpoint), methods=list(route.methods)))
        app.router.routes.append(Route(route.path, collector.preflight, methods=["OPTIONS"]))
        for method in route.methods:
            app.hot_routes[(method, route.path)] = endpoint
    agent = AgentScript(agent_path or default_agent_path())
    app.router.routes.append(Route("/rum.js", agent.serve, methods=["GET", "HEAD"]))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        if await producer.ready():
            return JSONResponse({"status": "ready", "kafka": "connected"})
        return JSONResponse(
            {"status": "not ready", "kafka": "not connected"},
            status_code=503,
            headers={"Retry-After": str(settings.retry_after_s)},
        )

    return app
