"""Who may send: public site keys per app, allowed origins, per-key rate limits, problems.

Errors are RFC 9457 problem details (``application/problem+json``) with a ``type`` URN per
kind of problem, so clients and operators can tell a bad key from a full buffer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from journeylens.contracts.catalog import App
from journeylens.problems import Problem


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float, amount: float = 1.0) -> float:
        """Take ``amount`` tokens: 0.0 when granted, else the seconds until it would be."""
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate


@dataclass(frozen=True, slots=True)
class Site:
    """An app as the guard sees it."""

    app: App
    any_origin: bool
    origins: frozenset[str]

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


@dataclass(slots=True)
class SiteGuard:
    """Resolves site keys, checks origins and rate-limits per key (per collector process)."""

    sites: dict[str, Site]
    rate_per_s: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    @classmethod
    def from_apps(
        cls,
        apps: Iterable[App],
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> SiteGuard:
        sites = {
            app.site_key: Site(
                app=app,
                any_origin="*" in app.allowed_origins,
                origins=frozenset(o.rstrip("/") for o in app.allowed_origins),
            )
            for app in apps
        }
        return cls(
            sites=sites, rate_per_s=max(rate_per_s, 1e-6), burst=max(burst, 1.0), clock=clock
        )

    def site(self, key: str | None) -> Site:
        if not key:
            raise Problem(
                401,
                "missing-site-key",
                "Site key required",
                "send the app's public site key as ?k=, X-JourneyLens-Key or x-api-key",
            )
        site = self.sites.get(key)
        if site is None:
            raise Problem(403, "unknown-site-key", "Unknown site key", "this site key is unknown")
        return site

    def check_origin(self, site: Site, origin: str | None) -> None:
        if origin is not None and not site.allows(origin):
            raise Problem(
                403,
                "origin-not-allowed",
                "Origin not allowed",
                f"origin {origin!r} is not in the allowed origins of app {site.app.id!r}",
            )

    def any_site_allows(self, origin: str) -> bool:
        return any(site.allows(origin) for site in self.sites.values())

    def limit(self, site: Site) -> None:
        now = self.clock()
        bucket = self.buckets.get(site.app.site_key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            self.buckets[site.app.site_key] = bucket
        wait_s = bucket.take(now)
        if wait_s > 0:
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"site key rate limit of {self.rate_per_s:g} requests/s exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )
