"""The query API: `create_app` builds the FastAPI application from settings passed in."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from journeylens import __version__
from journeylens.api.auth import TokenVerifier, require_token
from journeylens.api.cache import DEFAULT_TTL_S, ResultCache
from journeylens.api.context import ApiContext
from journeylens.api.db import DEFAULT_MAX_CLIENTS, ClientFactory, Database
from journeylens.api.problems import Problem, install_problem_handlers
from journeylens.api.queries import Reader
from journeylens.api.routes import alerts, anomalies, dashboard, incidents, journeys
from journeylens.contracts.catalog import Catalog
from journeylens.problems import PROBLEM_CONTENT_TYPE
from journeylens.settings import ApiSettings
from journeylens.storage.client import make_client

LOG = logging.getLogger(__name__)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Parameters that make no sense"},
    401: {"model": Problem, "description": "Missing or unaccepted bearer token"},
    404: {"model": Problem, "description": "Unknown journey or step"},
    422: {"model": Problem, "description": "Parameters that do not validate"},
    500: {"model": Problem, "description": "ClickHouse failed"},
}


def create_app(
    api_settings: ApiSettings,
    clickhouse: ClientFactory | str,
    catalog: Catalog,
    cache_ttl_s: float = DEFAULT_TTL_S,
    max_queries: int = DEFAULT_MAX_CLIENTS,
) -> FastAPI:
    """The API and dashboard over one ClickHouse database.

    ``clickhouse`` is a DSN (``http://...`` or ``chdb://...``) or a factory of
    clickhouse-connect clients (pooled, see `journeylens.api.db`). Journey health and timeseries
    answers are cached ``cache_ttl_s`` seconds (0: not at all), see `journeylens.api.cache`.
    At most ``max_queries`` queries run at once (the size of the client pool, see
    `journeylens.api.db`); the pool is filled at start-up.
    """
    factory: ClientFactory = (
        (lambda: make_client(clickhouse, create_database=False))
        if isinstance(clickhouse, str)
        else clickhouse
    )
    database = Database(factory, max_queries)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            await anyio.to_thread.run_sync(database.fill)
        except Exception as exc:  # ClickHouse may come up later: clients are made lazily then
            LOG.warning("could not connect to ClickHouse at start-up: %s", exc)
        try:
            yield
        finally:
            database.close()

    app = FastAPI(
        title="JourneyLens API",
        version=__version__,
        description=(
            "Journey health, timeseries, breakdowns, dependencies, funnels, incidents, alerts "
            "and anomalies. Every /api route needs 'Authorization: Bearer <token>'. Errors are "
            "application/problem+json."
        ),
        lifespan=lifespan,
    )
    reader = Reader(database, ResultCache(ttl_s=cache_ttl_s))
    app.state.api_context = ApiContext(catalog=catalog, reader=reader)
    dev_token = api_settings.dev_token
    app.state.dev_token = dev_token.get_secret_value() if dev_token is not None else None
    install_problem_handlers(app)
    auth = [Depends(require_token(TokenVerifier.from_settings(api_settings)))]
    for module in (journeys, incidents, alerts, anomalies):
        app.include_router(module.router, dependencies=auth, responses=ERROR_RESPONSES)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=dashboard.ASSETS), name="static")
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    return app


def _problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated document, with error bodies declared as application/problem+json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status.startswith(("4", "5")) and "application/json" in content:
                            content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
