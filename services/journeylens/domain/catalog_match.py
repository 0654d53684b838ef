"""Map a beacon to its journey and step, and a resource host to its dependency provider.

The catalog is compiled once into per-app rule lists; lookups are cached by path (bounded
LRU), because a site sends the same few paths over and over. Plain Python: no web or Kafka
imports, so the collector, the workers and the benchmarks run the same code.

Rules, in catalog order (journeys, then their steps):

- a custom step event (``journeylens.step("checkout:payment")``) matches ``rum.event`` exactly
  and wins over any path rule;
- otherwise the URL path is tried against every step's ``rum.path`` (a regular expression,
  searched, so anchor it with ``^``/``$``) and ``rum.route`` (a template such as
  ``/product/{id}``: each ``{name}`` is one non-empty path segment, a trailing slash is
  tolerated); the first step that matches wins;
- nothing matches: ``("_unmapped", "_unmapped")``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache

from journeylens.contracts.catalog import Catalog, Journey, Step
from journeylens.contracts.common import UNMAPPED

DEFAULT_CACHE_SIZE = 8192

_ROUTE_PARAM = re.compile(r"\{[^{}/]+\}")


@dataclass(frozen=True, slots=True)
class StepMatch:
    """The journey and step a beacon belongs to."""

    journey: str
    step: str

    @property
    def mapped(self) -> bool:
        return self.journey != UNMAPPED


UNMAPPED_MATCH = StepMatch(UNMAPPED, UNMAPPED)


def route_regex(template: str) -> re.Pattern[str]:
    """Compile a route template (``/product/{id}``) into an anchored regular expression."""
    parts = _ROUTE_PARAM.split(template)
    body = "[^/]+".join(re.escape(part) for part in parts).rstrip("/")
    return re.compile(f"^{body}/?$")


@dataclass(frozen=True, slots=True)
class _PathRule:
    pattern: re.Pattern[str]
    match: StepMatch


class CatalogMatcher:
    """A compiled catalog: ``match(app, path, step_event)`` and ``provider(host)``."""

    def __init__(self, catalog: Catalog, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._path_rules: dict[str, tuple[_PathRule, ...]] = {}
        self._event_rules: dict[str, dict[str, StepMatch]] = {}
        self._host_rules: tuple[tuple[str, str], ...] = ()
        self._exact_hosts: dict[str, str] = {}
        self._compile(catalog)
        self._match_path = lru_cache(maxsize=cache_size)(self._match_path_uncached)
        self._provider = lru_cache(maxsize=cache_size)(self._provider_uncached)

    # ------------------------------------------------------------------------ compile

    def _compile(self, catalog: Catalog) -> None:
        path_rules: dict[str, list[_PathRule]] = {}
        for journey in catalog.journeys:
            for step in journey.steps:
                self._compile_step(journey, step, path_rules)
        self._path_rules = {app: tuple(rules) for app, rules in path_rules.items()}
        globs: list[tuple[str, str]] = []
        for journey in catalog.journeys:
            for dependency in journey.dependencies:
                for host in dependency.hosts:
                    pattern = host.strip().lower()
                    if any(ch in pattern for ch in "*?["):
                        globs.append((pattern, dependency.provider))
                    else:
                        self._exact_hosts.setdefault(pattern, dependency.provider)
        self._host_rules = tuple(globs)

    def _compile_step(
        self, journey: Journey, step: Step, path_rules: dict[str, list[_PathRule]]
    ) -> None:
        if step.rum is None:
            return
        target = StepMatch(journey.id, step.id)
        rules = path_rules.setdefault(journey.app, [])
        if step.rum.path is not None:
            rules.append(_PathRule(re.compile(step.rum.path), target))
        if step.rum.route is not None:
            rules.append(_PathRule(route_regex(step.rum.route), target))
        if step.rum.event is not None:
            self._event_rules.setdefault(journey.app, {}).setdefault(step.rum.event, target)

    # ------------------------------------------------------------------------ lookups

    def match(self, app: str, path: str, step_event: str | None = None) -> StepMatch:
        """The journey and step of a beacon of ``app`` at ``path`` (or with ``step_event``)."""
        if step_event:
            events = self._event_rules.get(app)
            if events is not None:
                found = events.get(step_event)
                if found is not None:
                    return found
        return self._match_path(app, path)

    def _match_path_uncached(self, app: str, path: str) -> StepMatch:
        for rule in self._path_rules.get(app, ()):
            if rule.pattern.search(path) is not None:
                return rule.match
        return UNMAPPED_MATCH

    def provider(self, host: str) -> str | None:
        """The catalog dependency provider serving ``host`` (``name`` or ``name:port``)."""
        return self._provider(host.strip().lower())

    def _provider_uncached(self, host: str) -> str | None:
        candidates = [host]
        bare = _strip_port(host)
        if bare != host:
            candidates.append(bare)
        for candidate in candidates:
            exact = self._exact_hosts.get(candidate)
            if exact is not None:
                return exact
        for candidate in candidates:
            for pattern, provider in self._host_rules:
                if fnmatch.fnmatchcase(candidate, pattern):
                    return provider
        return None

    def cache_info(self) -> dict[str, int]:
        """Hits and misses of the path cache (for tests and the bench)."""
        info = self._match_path.cache_info()
        return {"hits": info.hits, "misses": info.misses, "size": info.currsize}


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [::1]:443
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name
    return host
