"""A read-only, lookup-friendly view of the journey catalog for the aggregation hot path."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from journeylens.contracts.catalog import Catalog, Journey, Thresholds
from journeylens.contracts.common import JOURNEY_LEVEL


@dataclass(frozen=True, slots=True)
class JourneyView:
    id: str
    steps: tuple[str, ...]
    thresholds: dict[str, Thresholds]
    """Step id (and ``_journey``) → the thresholds that apply."""
    apdex_t_ms: dict[str, float]
    """Step id (and ``_journey``) → Apdex T in ms."""
    value_per_completion: float = 0.0
    currency: str = "EUR"
    host_patterns: tuple[tuple[str, str], ...] = ()
    """(host or glob, provider) pairs from the journey's dependencies."""
    _providers: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def last_step(self) -> str:
        return self.steps[-1]

    def thresholds_for(self, step: str) -> Thresholds:
        return self.thresholds.get(step) or self.thresholds[JOURNEY_LEVEL]

    def provider_for(self, host: str) -> str | None:
        """The catalog provider a host belongs to (exact name or glob), or None."""
        if host in self._providers:
            return self._providers[host]
        found = next((p for pattern, p in self.host_patterns if fnmatchcase(host, pattern)), None)
        if len(self._providers) < 10_000:
            self._providers[host] = found
        return found

    @classmethod
    def from_journey(cls, journey: Journey) -> JourneyView:
        thresholds = {step.id: journey.thresholds_for(step.id) for step in journey.steps}
        thresholds[JOURNEY_LEVEL] = journey.thresholds
        return cls(
            id=journey.id,
            steps=tuple(step.id for step in journey.steps),
            thresholds=thresholds,
            apdex_t_ms={step: t.apdex_t_ms for step, t in thresholds.items()},
            value_per_completion=journey.value_per_completion,
            currency=journey.currency,
            host_patterns=tuple(
                (host, dep.provider) for dep in journey.dependencies for host in dep.hosts
            ),
        )


@dataclass(frozen=True, slots=True)
class CatalogView:
    journeys: dict[str, JourneyView]

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> CatalogView:
        return cls({j.id: JourneyView.from_journey(j) for j in catalog.journeys})

    def journey(self, journey_id: str) -> JourneyView | None:
        return self.journeys.get(journey_id)

    def thresholds_for(self, journey_id: str, step: str) -> Thresholds:
        view = self.journeys.get(journey_id)
        return Thresholds() if view is None else view.thresholds_for(step)
