"""Rows of the read queries → response models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel, TypeAdapter

from journeylens.api import models
from journeylens.api.metrics import Band, band_for, rating, vital_band
from journeylens.api.queries import Point, as_utc, clean
from journeylens.contracts.catalog import Journey

VITALS = ("lcp", "inp", "cls", "fcp", "ttfb")


def json_body(model: BaseModel) -> bytes:
    """A response model as JSON (by alias), serialized once by pydantic."""
    return model.model_dump_json(by_alias=True).encode()


def json_response(body: bytes) -> Response:
    """Pre-serialized JSON. A route returning it skips FastAPI's second validation and
    serialization of the response model; the route still declares the model (OpenAPI)."""
    return Response(content=body, media_type="application/json")


_POINTS = TypeAdapter(list[models.Point])
_NO_POINTS = b'"points":[]}'


def points_json(points: list[Point]) -> bytes:
    """Points ``(t, value)`` as the JSON array of `models.Point` (typed and cleaned already)."""
    return _POINTS.dump_json([models.Point.model_construct(t=t, value=v) for t, v in points])


def timeseries_body(envelope: models.Timeseries, points: bytes) -> bytes:
    """``envelope`` (its ``points`` empty) as JSON with the encoded ``points`` in place: the
    same bytes as serializing the whole model, without encoding the points per request."""
    if envelope.points:
        raise ValueError("the envelope carries no points")
    body = json_body(envelope)
    if not body.endswith(_NO_POINTS):  # points is the last field of the model
        raise AssertionError("models.Timeseries must end with its points")
    return body[: -len(_NO_POINTS) + len('"points":')] + points + b"}"


def band_model(band: Band) -> models.Band:
    return models.Band(good=band.good, poor=band.poor, direction=band.direction)


def incident(row: Mapping[str, Any]) -> models.Incident:
    signals = [
        models.Signal(
            kind=kind,
            step=step,
            metric=metric,
            value=float(value),
            threshold=clean(threshold),
            baseline=clean(baseline),
            window_start=as_utc(window_start),
            detail=detail,
        )
        for kind, step, metric, value, threshold, baseline, window_start, detail in zip(
            row["signal_kind"],
            row["signal_step"],
            row["signal_metric"],
            row["signal_value"],
            row["signal_threshold"],
            row["signal_baseline"],
            row["signal_window_start"],
            row["signal_detail"],
            strict=False,
        )
    ]
    resolved = row["resolved_at"]
    return models.Incident(
        incident_id=row["incident_id"],
        fingerprint=row["fingerprint"],
        journey=row["journey"],
        journey_name=row["journey_name"],
        status=row["status"],
        severity=row["severity"],
        scope=row["scope"],
        title=row["title"],
        summary=row["summary"],
        started_at=as_utc(row["started_at"]),
        resolved_at=as_utc(resolved) if resolved is not None else None,
        updated_at=as_utc(row["updated_at"]),
        sessions_affected=int(row["sessions_affected"]),
        conversion_drop=clean(row["conversion_drop"]),
        lost_completions=clean(row["lost_completions"]) or 0.0,
        revenue_at_risk=clean(row["revenue_at_risk"], 2) or 0.0,
        currency=row["currency"],
        suspected_step=row["suspected_step"],
        suspected_dependency=row["suspected_dependency"],
        segment_dimension=row["segment_dimension"],
        segment_value=row["segment_value"],
        failing_locations=list(row["failing_locations"]),
        failed_assertions=list(row["failed_assertions"]),
        signals=signals,
    )


def journey_health(
    journey: Journey,
    window: Mapping[str, Any] | None,
    incidents: list[models.Incident],
) -> models.JourneyHealth:
    thresholds = journey.thresholds
    w: Mapping[str, Any] = window or {}
    vitals = []
    for name in VITALS:
        band = vital_band(thresholds, name)
        value = clean(w.get(name))
        vitals.append(
            models.VitalEvidence(
                name=name,
                p75=value,
                threshold=band_model(band),
                rating=rating(value, band),
            )
        )
    runs = int(w.get("runs") or 0)
    failures = min(int(w.get("failures") or 0), runs)
    has_views = bool(w.get("sampled_views"))
    return models.JourneyHealth(
        id=journey.id,
        name=journey.name,
        category=journey.category.value,
        criticality=journey.criticality,
        value_per_completion=journey.value_per_completion,
        currency=journey.currency,
        steps=[models.StepInfo(id=step.id, name=step.name) for step in journey.steps],
        status=w.get("status", "no_data"),
        scope=w.get("scope", "none"),
        reasons=list(w.get("reasons", [])),
        window_start=_time(w.get("window_start")),
        window_end=_time(w.get("window_end")),
        vitals=vitals,
        error_rate=clean(w.get("error_rate")) if has_views else None,
        error_rate_threshold=thresholds.error_rate,
        apdex=clean(w.get("apdex")),
        page_views=int(w.get("page_views") or 0),
        sessions=int(w.get("sessions") or 0),
        availability=round((runs - failures) / runs, 6) if runs else None,
        availability_threshold=thresholds.min_availability,
        synthetic_runs=runs,
        open_incidents=incidents,
        revenue_at_risk=round(sum(i.revenue_at_risk for i in incidents), 2),
    )


def _time(value: Any) -> datetime | None:
    return as_utc(value) if isinstance(value, datetime) else None


def ratings_for(journey: Journey, step: str, values: Mapping[str, float | None]) -> dict[str, Any]:
    thresholds = journey.thresholds_for(step)
    out: dict[str, Any] = {}
    for metric, value in values.items():
        band = band_for(metric, thresholds)
        if band is not None:
            out[metric] = rating(value, band)
    return out
