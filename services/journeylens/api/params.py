"""Query parameters shared by the routes: time ranges, resolution, pagination.

The dependencies are ``async`` although they never await: they do not block, and FastAPI
would run a plain ``def`` dependency in its threadpool (a thread hop on every request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Query

from journeylens.api.problems import bad_request

Resolution = Literal["1m", "5m", "1h", "1d"]
RESOLUTION_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
MAX_POINTS = 10_080  # a week of 1-minute windows
MAX_RANGE = timedelta(days=400)
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 1, 1, tzinfo=UTC)
DEFAULT_SPAN = timedelta(hours=24)


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sql_time(value: datetime) -> str:
    """A UTC time as a DateTime64(3, 'UTC') parameter value."""
    return utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _check_bounds(name: str, value: datetime) -> datetime:
    value = utc(value)
    if not EARLIEST <= value <= LATEST:
        raise bad_request(f"'{name}' must be between {EARLIEST:%Y} and {LATEST:%Y}")
    return value


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def params(self) -> dict[str, str]:
        return {"from": sql_time(self.start), "to": sql_time(self.end)}


async def time_range(
    from_: Annotated[
        datetime | None,
        Query(alias="from", description="Start (ISO 8601, UTC when no offset); default to - 24 h"),
    ] = None,
    to: Annotated[
        datetime | None, Query(description="End (ISO 8601, UTC when no offset); default now")
    ] = None,
) -> TimeRange:
    end = _check_bounds("to", to) if to is not None else datetime.now(UTC)
    start = _check_bounds("from", from_) if from_ is not None else end - DEFAULT_SPAN
    if start >= end:
        raise bad_request("'from' must be before 'to'")
    if end - start > MAX_RANGE:
        raise bad_request(f"the range may span at most {MAX_RANGE.days} days")
    return TimeRange(start, end)


def auto_resolution(span: timedelta) -> Resolution:
    """Raw 1-minute windows up to 6 h, 5-minute buckets up to 48 h, hours up to 60 days."""
    if span <= timedelta(hours=6):
        return "1m"
    if span <= timedelta(hours=48):
        return "5m"
    if span <= timedelta(days=60):
        return "1h"
    return "1d"


def pick_resolution(span: timedelta, requested: Resolution | None) -> Resolution:
    resolution = requested or auto_resolution(span)
    points = span.total_seconds() / RESOLUTION_SECONDS[resolution]
    if points > MAX_POINTS:
        raise bad_request(
            f"resolution {resolution} over this range gives {points:.0f} points (at most "
            f"{MAX_POINTS}); pick a coarser resolution or a shorter range"
        )
    return resolution


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int
    offset: int

    def next_offset(self, returned: int) -> int | None:
        return self.offset + self.limit if returned > self.limit else None


async def pagination(
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000).")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")] = 0,
) -> Pagination:
    return Pagination(limit, offset)
