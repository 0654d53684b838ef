"""``/api/v1/alerts``: the alert lifecycle events (CloudEvents of experience.alerts.v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from journeylens.api import models
from journeylens.api.context import ApiContext, api_context
from journeylens.api.params import Pagination, TimeRange, pagination, time_range
from journeylens.api.queries import as_utc, clean

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get("", response_model=models.AlertPage, summary="Alert events, newest first")
def list_alerts(
    ctx: Annotated[ApiContext, Depends(api_context)],
    page: Annotated[Pagination, Depends(pagination)],
    window: Annotated[TimeRange, Depends(time_range)],
    journey: Annotated[str | None, Query(max_length=64)] = None,
) -> models.AlertPage:
    rows = ctx.reader.alert_events(ctx.journey_ids(journey), window, page)
    items = [
        models.AlertEvent(
            id=row["id"],
            type=row["type"],
            time=as_utc(row["time"]),
            incident_id=row["incident_id"],
            fingerprint=row["fingerprint"],
            status=row["status"],
            severity=row["severity"],
            journey=row["journey"],
            title=row["title"],
            summary=row["summary"],
            revenue_at_risk=clean(row["revenue_at_risk"], 2) or 0.0,
            currency=row["currency"],
        )
        for row in rows[: page.limit]
    ]
    return models.AlertPage(
        limit=page.limit, offset=page.offset, next_offset=page.next_offset(len(rows)), items=items
    )
