"""What the routes share: the catalog and the read models, kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from journeylens.api.problems import not_found
from journeylens.api.queries import Reader
from journeylens.contracts.catalog import Catalog, Journey


@dataclass(frozen=True)
class ApiContext:
    catalog: Catalog
    reader: Reader

    def journey(self, journey_id: str) -> Journey:
        journey = self.catalog.journey(journey_id)
        if journey is None:
            raise not_found(f"no journey {journey_id!r} in the catalog")
        return journey

    def journey_ids(self, journey_id: str | None = None) -> list[str]:
        """All catalog journeys, or the one asked for (404 when unknown)."""
        if journey_id is None:
            return [journey.id for journey in self.catalog.journeys]
        return [self.journey(journey_id).id]


async def api_context(request: Request) -> ApiContext:
    # async: it does not block, and FastAPI runs a plain ``def`` dependency in its threadpool
    context = request.app.state.api_context
    assert isinstance(context, ApiContext)
    return context
