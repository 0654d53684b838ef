"""``/api/v1/journeys``: the catalog's journeys with their health, and per-journey detail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from journeylens.api import models, views
from journeylens.api.context import ApiContext, api_context
from journeylens.api.db import Row
from journeylens.api.metrics import METRIC_NAMES, METRICS, Dimension, SegmentDimension, band_for
from journeylens.api.params import (
    Resolution,
    TimeRange,
    pick_resolution,
    time_range,
    utc,
)
from journeylens.api.problems import bad_request, not_found
from journeylens.api.queries import JOURNEY_LEVEL, clean, metric_value, uses
from journeylens.contracts.catalog import Journey

router = APIRouter(prefix="/api/v1/journeys", tags=["journeys"])
Context = Annotated[ApiContext, Depends(api_context)]
Range = Annotated[TimeRange, Depends(time_range)]
StepParam = Annotated[
    str,
    Query(max_length=64, description="A step id of the journey, or '_journey' (the whole)."),
]


def _step_of(journey: Journey, step: str) -> str:
    if step != JOURNEY_LEVEL and all(s.id != step for s in journey.steps):
        raise not_found(f"journey {journey.id!r} has no step {step!r}")
    return step


@router.get("", response_model=models.JourneyList, summary="Journeys with current health")
async def list_journeys(
    ctx: Context,
    at: Annotated[
        datetime | None, Query(description="Evaluate as of this time (default now).")
    ] = None,
) -> Response:
    when = utc(at) if at is not None else None
    if when is not None and not datetime(1971, 1, 1, tzinfo=UTC) <= when <= datetime(
        2199, 1, 1, tzinfo=UTC
    ):
        raise bad_request("'at' must be between 1971 and 2199")
    # as of now: the answer of the last few seconds, see journeylens.api.cache (async: a cached
    # answer is returned on the event loop, only a miss queries ClickHouse in a worker thread)
    body = await ctx.reader.cache.get_async(("journeys", when), lambda: _journey_list(ctx, when))
    return views.json_response(body)


def _journey_list(ctx: ApiContext, at: datetime | None) -> bytes:
    when = at if at is not None else datetime.now(UTC)
    ids = ctx.journey_ids()
    windows = ctx.reader.last_windows(ids, when)
    open_by_journey: dict[str, list[models.Incident]] = {}
    for row in ctx.reader.incidents(ids, "firing", None, when):
        open_by_journey.setdefault(row["journey"], []).append(views.incident(row))
    items = [
        views.journey_health(j, windows.get(j.id), open_by_journey.get(j.id, []))
        for j in ctx.catalog.journeys
    ]
    return views.json_body(models.JourneyList(generated_at=when, items=items))


@router.get(
    "/{journey_id}/timeseries",
    response_model=models.Timeseries,
    response_model_by_alias=True,
    summary="A metric of a journey step over time",
    description=(
        "Resolution follows the range unless given: raw 1-minute windows up to 6 h, 5-minute "
        "buckets up to 48 h, the hourly rollup up to 60 days, the daily rollup beyond."
    ),
)
async def timeseries(
    journey_id: str,
    ctx: Context,
    window: Range,
    metric: Annotated[
        str,
        Query(description="A metric name.", json_schema_extra={"enum": list(METRIC_NAMES)}),
    ] = "rum.lcp_ms.p75",
    step: StepParam = JOURNEY_LEVEL,
    segment_dimension: SegmentDimension = SegmentDimension.ALL,
    segment_value: Annotated[str, Query(max_length=128)] = "all",
    resolution: Annotated[
        Resolution | None, Query(description="Force a resolution (default: from the range).")
    ] = None,
) -> Response:
    journey = ctx.journey(journey_id)
    spec = METRICS.get(metric)
    if spec is None:
        raise bad_request(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    _step_of(journey, step)
    if segment_dimension == SegmentDimension.ALL:
        segment_value = "all"
    chosen = pick_resolution(window.span, resolution)
    series = await ctx.reader.timeseries(
        spec, journey.id, step, segment_dimension.value, segment_value, window, chosen
    )
    band = band_for(metric, journey.thresholds_for(step))
    envelope = models.Timeseries(
        journey=journey.id,
        step=step,
        metric=metric,
        unit=spec.unit,
        segment_dimension=segment_dimension.value,
        segment_value=segment_value,
        from_=window.start,
        to=window.end,
        resolution=chosen,
        source=series.source,
        threshold=views.band_model(band) if band is not None else None,
        points=[],
    )
    # the points are encoded once per cached answer, not once per request
    body = views.timeseries_body(envelope, series.encoded(views.points_json))
    return views.json_response(body)


_SEGMENT_METRICS = (
    "rum.lcp_ms.p75",
    "rum.inp_ms.p75",
    "rum.cls.p75",
    "rum.error_rate",
    "rum.apdex",
)


@router.get(
    "/{journey_id}/breakdown",
    response_model=models.Breakdown,
    response_model_by_alias=True,
    summary="Vitals, errors and Apdex per segment value",
)
def breakdown(
    journey_id: str,
    ctx: Context,
    window: Range,
    dimension: Dimension = Dimension.COUNTRY,
    step: StepParam = JOURNEY_LEVEL,
) -> models.Breakdown:
    journey = ctx.journey(journey_id)
    _step_of(journey, step)
    names = [*uses(*_SEGMENT_METRICS), "sessions"]
    rows = ctx.reader.segments(journey.id, step, dimension.value, window, names)
    items = []
    for row in rows:
        values = {name: clean(metric_value(row, name)) for name in _SEGMENT_METRICS}
        items.append(
            models.SegmentRow(
                value=row["key"],
                page_views=int(row["s_page_views"]),
                sessions=int(row["s_sessions"]),
                lcp_p75_ms=values["rum.lcp_ms.p75"],
                inp_p75_ms=values["rum.inp_ms.p75"],
                cls_p75=values["rum.cls.p75"],
                error_rate=values["rum.error_rate"],
                apdex=values["rum.apdex"],
                ratings=views.ratings_for(journey, step, values),
            )
        )
    return models.Breakdown(
        journey=journey.id,
        step=step,
        dimension=dimension.value,
        from_=window.start,
        to=window.end,
        items=items,
    )


@router.get(
    "/{journey_id}/dependencies",
    response_model=models.Dependencies,
    response_model_by_alias=True,
    summary="Third parties and CDN hosts ranked by impact",
    description="Ranked by failures (failure rate x requests), then p75 duration.",
)
def dependencies(journey_id: str, ctx: Context, window: Range) -> models.Dependencies:
    journey = ctx.journey(journey_id)
    items = []
    for row in ctx.reader.dependencies(journey.id, window):
        requests, failures = int(row["requests"]), int(row["failures"])
        p75 = clean(row["p75_ms"], 3)
        items.append(
            models.DependencyRow(
                host=row["host"],
                provider=row["provider"],
                requests=requests,
                failures=failures,
                failure_rate=round(failures / requests, 6) if requests else 0.0,
                p75_ms=p75,
                network_errors=int(row["network_errors"]),
                impact=float(failures),
                steps=list(row["steps"]),
            )
        )
    return models.Dependencies(journey=journey.id, from_=window.start, to=window.end, items=items)


@router.get(
    "/{journey_id}/funnel",
    response_model=models.Funnel,
    response_model_by_alias=True,
    summary="Sessions entered per step and the completion rate",
)
def funnel(journey_id: str, ctx: Context, window: Range) -> models.Funnel:
    journey = ctx.journey(journey_id)
    rows = {
        row["key"]: row
        for row in ctx.reader.step_sums(
            journey.id, window, ["page_views", "funnel_entered", "funnel_completed"]
        )
    }
    steps: list[models.FunnelStep] = []
    first: int | None = None
    previous: int | None = None
    for step in journey.steps:
        entered = int(rows[step.id]["s_funnel_entered"]) if step.id in rows else 0
        first = entered if first is None else first
        steps.append(
            models.FunnelStep(
                step=step.id,
                name=step.name,
                sessions_entered=entered,
                share_of_first=round(entered / first, 6) if first else None,
                drop_off=round(1 - entered / previous, 6) if previous else None,
            )
        )
        previous = entered
    whole = rows.get(JOURNEY_LEVEL)
    entered = int(whole["s_funnel_entered"]) if whole else 0
    completed = min(int(whole["s_funnel_completed"]) if whole else 0, entered)
    return models.Funnel(
        journey=journey.id,
        from_=window.start,
        to=window.end,
        steps=steps,
        sessions_entered=entered,
        sessions_completed=completed,
        completion_rate=round(completed / entered, 6) if entered else None,
    )


_COMPARE_METRICS = (
    "rum.lcp_ms.p75",
    "rum.ttfb_ms.p75",
    "rum.duration_ms.p75",
    "rum.error_rate",
    "rum.apdex",
    "synthetic.availability",
    "synthetic.duration_ms.p95",
)


@router.get(
    "/{journey_id}/compare",
    response_model=models.Compare,
    response_model_by_alias=True,
    summary="RUM and synthetic side by side per step",
)
def compare(journey_id: str, ctx: Context, window: Range) -> models.Compare:
    journey = ctx.journey(journey_id)
    rows = {r["key"]: r for r in ctx.reader.step_sums(journey.id, window, uses(*_COMPARE_METRICS))}
    steps = []
    for step_id, name in [(s.id, s.name) for s in journey.steps] + [(JOURNEY_LEVEL, "Journey")]:
        row = rows.get(step_id)

        def value(metric: str, row: Row | None = row) -> float | None:
            return clean(metric_value(row, metric)) if row else None

        steps.append(
            models.CompareStep(
                step=step_id,
                name=name,
                rum=models.RumSide(
                    page_views=int(row["s_page_views"]) if row else 0,
                    lcp_p75_ms=value("rum.lcp_ms.p75"),
                    ttfb_p75_ms=value("rum.ttfb_ms.p75"),
                    duration_p75_ms=value("rum.duration_ms.p75"),
                    error_rate=value("rum.error_rate"),
                    apdex=value("rum.apdex"),
                ),
                synthetic=models.SyntheticSide(
                    runs=int(row["s_synthetic_runs"]) if row else 0,
                    failures=int(row["s_synthetic_failures"]) if row else 0,
                    availability=value("synthetic.availability"),
                    duration_p95_ms=value("synthetic.duration_ms.p95"),
                ),
            )
        )
    return models.Compare(journey=journey.id, from_=window.start, to=window.end, steps=steps)


@router.get(
    "/{journey_id}/locations",
    response_model=models.Locations,
    response_model_by_alias=True,
    summary="Synthetic availability per probe location",
)
def locations(journey_id: str, ctx: Context, window: Range) -> models.Locations:
    journey = ctx.journey(journey_id)
    items = []
    for row in ctx.reader.locations(journey.id, window):
        runs = int(row["runs"])
        failures = min(int(row["failures"]), runs)
        items.append(
            models.LocationRow(
                location=row["location"],
                runs=runs,
                failures=failures,
                availability=round((runs - failures) / runs, 6) if runs else None,
                duration_p95_ms=clean(row["duration_p95_ms"], 3),
            )
        )
    return models.Locations(journey=journey.id, from_=window.start, to=window.end, items=items)
