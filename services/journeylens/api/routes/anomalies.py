"""``/api/v1/anomalies``: metrics beyond threshold and baseline (experience.anomalies.v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from journeylens.api import models
from journeylens.api.context import ApiContext, api_context
from journeylens.api.params import Pagination, TimeRange, pagination, time_range
from journeylens.api.queries import as_utc, clean

router = APIRouter(prefix="/api/v1/anomalies", tags=["anomalies"])


@router.get("", response_model=models.AnomalyPage, summary="Anomalies, newest first")
def list_anomalies(
    ctx: Annotated[ApiContext, Depends(api_context)],
    page: Annotated[Pagination, Depends(pagination)],
    window: Annotated[TimeRange, Depends(time_range)],
    journey: Annotated[str | None, Query(max_length=64)] = None,
    metric: Annotated[str | None, Query(max_length=64, description="e.g. rum.error_rate")] = None,
) -> models.AnomalyPage:
    rows = ctx.reader.anomalies(ctx.journey_ids(journey), metric, window, page)
    items = [
        models.AnomalyOut(
            anomaly_id=row["anomaly_id"],
            journey=row["journey"],
            step=row["step"],
            metric=row["metric"],
            window_start=as_utc(row["window_start"]),
            window_end=as_utc(row["window_end"]),
            value=float(row["value"]),
            threshold=clean(row["threshold"]),
            baseline=clean(row["baseline"]),
            band_low=clean(row["band_low"]),
            band_high=clean(row["band_high"]),
            direction=row["direction"],
            violating_windows=int(row["violating_windows"]),
            of_windows=int(row["of_windows"]),
            scope=row["scope"],
            segment_dimension=row["segment_dimension"],
            segment_value=row["segment_value"],
            dependency=row["dependency"],
            detected_at=as_utc(row["detected_at"]),
        )
        for row in rows[: page.limit]
    ]
    return models.AnomalyPage(
        limit=page.limit, offset=page.offset, next_offset=page.next_offset(len(rows)), items=items
    )
