"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API answers has the same shape (`Problem`): 400 for parameters that parse but
make no sense (an unknown metric, ``from`` after ``to``), 401 without a valid bearer token,
404 for an unknown journey or step, 422 for parameters that do not validate, 500 (no
internals) when ClickHouse fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from journeylens.problems import Problem as HttpProblem
from journeylens.problems import problem_json

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="URN naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request path.")
    errors: list[dict[str, object]] | None = Field(
        default=None, description="Validation errors (422 only): location and message."
    )


ApiProblem = HttpProblem
"""Raised by routes and dependencies; answered as problem+json."""


def bad_request(detail: str) -> ApiProblem:
    return ApiProblem(400, "bad-request", "Bad request", detail)


def not_found(detail: str) -> ApiProblem:
    return ApiProblem(404, "not-found", "Not found", detail)


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, object]] | None = None,
) -> Response:
    return problem_json(status, slug, title, detail, request.url.path, headers, errors)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
        for error in exc.errors()
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)  # type: ignore[call-overload]
        return problem_response(
            request, 422, "validation", "Invalid parameters", detail, errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        return problem_response(
            request, exc.status_code, slug, str(exc.detail), str(exc.detail), exc.headers
        )

    async def on_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return problem_response(
            request, 500, "internal", "Internal error", "the query failed; see the API log"
        )

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)
