"""``/api/v1/incidents``: incidents (firing first, then history) with their business impact."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from journeylens.api import models, views
from journeylens.api.context import ApiContext, api_context
from journeylens.api.params import Pagination, pagination

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.get("", response_model=models.IncidentPage, summary="Incidents with impact")
def list_incidents(
    ctx: Annotated[ApiContext, Depends(api_context)],
    page: Annotated[Pagination, Depends(pagination)],
    status: Annotated[Literal["firing", "resolved"] | None, Query()] = None,
    journey: Annotated[str | None, Query(max_length=64)] = None,
) -> models.IncidentPage:
    rows = ctx.reader.incidents(ctx.journey_ids(journey), status, page)
    return models.IncidentPage(
        limit=page.limit,
        offset=page.offset,
        next_offset=page.next_offset(len(rows)),
        items=[views.incident(row) for row in rows[: page.limit]],
    )
