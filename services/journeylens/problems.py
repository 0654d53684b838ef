"""HTTP problem details (RFC 9457) shared by the collector and the API."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

PROBLEM_TYPE = "urn:journeylens:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    errors: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    body: dict[str, object] = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_json(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, object]] | None = None,
) -> Response:
    body = problem_body(status, slug, title, detail, instance, errors)
    return Response(
        orjson.dumps(body), status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE
    )


class Problem(Exception):
    """An HTTP error answered as problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self, instance: str, extra_headers: Mapping[str, str] | None = None) -> Response:
        headers = {**self.headers, **(extra_headers or {})}
        return problem_json(self.status, self.slug, self.title, self.detail, instance, headers)
