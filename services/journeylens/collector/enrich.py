"""Enrichment every normalized event gets, whatever format it came in.

- journey and step from the catalog (URL path rules, route templates, custom step events);
  dependency providers for resource hosts;
- device class, browser and OS from the User-Agent (ua-parser; cached per UA string because a
  parse takes tens of microseconds); crawlers become device class ``bot``;
- country from a trusted proxy/CDN header (``CollectorSettings.country_header``, e.g.
  ``CF-IPCountry``) or from a MaxMind DB file (``geoip_db_path``, read with the ``maxminddb``
  package). The client IP is only used for that look-up and is never stored;
- connection type normalized to a small set (effectiveType or NetInfo type);
- probe traffic flagged: header ``X-JourneyLens-Probe: <run id>`` or the UA token
  ``JourneyLensProbe/<probe version>`` (the probe sets both; a sendBeacon from a probed page
  only carries the UA). The run id comes only from the header: the UA token's suffix is the
  probe's version, not a run;
- URL query values of sensitive parameters replaced by ``[redacted]``, fragments dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote_plus, urlsplit

from ua_parser import parse as parse_user_agent

from journeylens.contracts.rum_beacons_v1 import Context, DeviceClass, RumEvent
from journeylens.domain.catalog_match import CatalogMatcher
from journeylens.settings import CollectorSettings

PROBE_HEADER = "x-journeylens-probe"
PROBE_UA_MARKER = "JourneyLensProbe/"
REDACTED = "[redacted]"
UNKNOWN = "unknown"
MAX_USER_AGENT = 512
UA_CACHE_SIZE = 4096
URL_CACHE_SIZE = 8192
CONTEXT_CACHE_SIZE = 4096
"""Distinct enriched contexts kept per process (cleared when full)."""
PROVIDER_CACHE_SIZE = 8192
"""Dependency hosts whose catalog provider is kept per process (cleared when full)."""

CONNECTION_TYPES = frozenset(
    {
        "slow-2g",
        "2g",
        "3g",
        "4g",
        "5g",
        "wifi",
        "ethernet",
        "cellular",
        "bluetooth",
        "wimax",
        "mixed",
        "none",
        "other",
    }
)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "macOS",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "ChromeOS",
        "Fedora",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Debian",
        "Red Hat",
        "SUSE",
        "Mint",
        "Solaris",
    }
)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "HarmonyOS"})
_BOT_WORDS = ("bot", "crawler", "spider", "slurp", "crawling", "headlesschrome-bot")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_NOT_A_COUNTRY = frozenset({"XX", "T1", "ZZ"})
_SEGMENTS = re.compile(r"[^a-z0-9]+")


class EnrichError(RuntimeError):
    """Enrichment cannot be set up as configured (e.g. a GeoIP DB without a reader)."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the User-Agent tells about the client."""

    device_class: DeviceClass = DeviceClass.UNKNOWN
    browser: str = UNKNOWN
    browser_version: str | None = None
    os: str = UNKNOWN
    os_version: str | None = None

    @property
    def is_bot(self) -> bool:
        return self.device_class is DeviceClass.BOT


NO_CLIENT = ClientInfo()


class RequestContext(NamedTuple):
    """Per-request facts shared by every event of a batch (immutable; a named tuple because
    it is built for every request, twice as fast as a frozen dataclass)."""

    user_agent: str | None
    client: ClientInfo
    country: str = UNKNOWN
    synthetic: bool = False
    probe_run_id: str | None = None


class CountryLookup(Protocol):
    """Resolves a client IP to an ISO country code (or None)."""

    def country(self, ip: str) -> str | None: ...


# --------------------------------------------------------------------------- user agent


def _version(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return ".".join(kept) if kept else None


def classify_user_agent(user_agent: str) -> ClientInfo:
    """Device class, browser and OS of one User-Agent string (uncached)."""
    if not user_agent:
        return NO_CLIENT
    result = parse_user_agent(user_agent)
    agent, os_, device = result.user_agent, result.os, result.device
    browser = agent.family if agent is not None and agent.family != "Other" else UNKNOWN
    os_family = os_.family if os_ is not None and os_.family != "Other" else UNKNOWN
    return ClientInfo(
        device_class=_device_class(
            user_agent, browser, os_family, device.family if device is not None else None
        ),
        browser=browser,
        browser_version=_version(agent.major) if agent is not None else None,
        os=os_family,
        os_version=_version(os_.major, os_.minor) if os_ is not None else None,
    )


def _device_class(
    user_agent: str, browser: str, os_family: str, device_family: str | None
) -> DeviceClass:
    lowered = user_agent.lower()
    if device_family == "Spider" or any(word in browser.lower() for word in _BOT_WORDS):
        return DeviceClass.BOT
    if any(word in lowered for word in ("bot/", "crawler", "spider", "+http")):
        return DeviceClass.BOT
    if device_family in ("iPad", "Kindle") or "tablet" in lowered or "silk/" in lowered:
        return DeviceClass.TABLET
    if os_family == "Android" and "mobile" not in lowered:
        return DeviceClass.TABLET
    if os_family in _MOBILE_OS or "mobi" in lowered or device_family == "iPhone":
        return DeviceClass.MOBILE
    if os_family in _DESKTOP_OS or any(t in lowered for t in ("windows nt", "macintosh", "x11")):
        return DeviceClass.DESKTOP
    return DeviceClass.UNKNOWN


def is_probe_user_agent(user_agent: str | None) -> bool:
    """True when the User-Agent carries the probe's ``JourneyLensProbe/<version>`` token."""
    return user_agent is not None and PROBE_UA_MARKER in user_agent


# --------------------------------------------------------------------------- country


def country_from_header(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code from a trusted header, or None ('XX', 'T1': unknown)."""
    if not value:
        return None
    code = value.strip().upper()
    if _COUNTRY.match(code) and code not in _NOT_A_COUNTRY:
        return code
    return None


class MaxMindCountryLookup:
    """Country of an IP from a MaxMind DB file (GeoLite2/GeoIP2 Country or City)."""

    def __init__(self, path: Path) -> None:
        try:
            import maxminddb
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EnrichError(
                f"geoip_db_path is set ({path}) but the 'maxminddb' package is not installed: "
                "pip install maxminddb, or unset JOURNEYLENS_COLLECTOR_GEOIP_DB_PATH"
            ) from exc
        if not path.is_file():
            raise EnrichError(f"GeoIP database not found: {path} (geoip_db_path)")
        self._reader: Any = maxminddb.open_database(str(path))
        self._cached: Callable[[str], str | None] = lru_cache(maxsize=UA_CACHE_SIZE)(self._lookup)

    def _lookup(self, ip: str) -> str | None:
        try:
            record = self._reader.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        country = record.get("country") or record.get("registered_country") or {}
        code = country.get("iso_code") if isinstance(country, dict) else None
        return code.upper() if isinstance(code, str) else None

    def country(self, ip: str) -> str | None:
        return self._cached(ip)

    def close(self) -> None:
        self._reader.close()


# --------------------------------------------------------------------------- URLs


class UrlScrubber:
    """Replaces the values of sensitive query parameters and drops fragments.

    A rule matches a parameter whose lower-cased name equals it, contains it as a segment
    (``access_token``, ``user-email``), or, for rules of 5+ letters, contains it anywhere
    (``sessionid``). Over-redacting is the safe side.
    """

    def __init__(self, rules: Iterable[str], cache_size: int = URL_CACHE_SIZE) -> None:
        cleaned = {rule.strip().lower() for rule in rules if rule.strip()}
        self._exact = frozenset(cleaned)
        self._substrings = tuple(sorted(rule for rule in cleaned if len(rule) >= 5))
        self.scrub: Callable[[str], str] = lru_cache(maxsize=cache_size)(self._scrub)
        self._sensitive = lru_cache(maxsize=1024)(self._is_sensitive)

    def _is_sensitive(self, name: str) -> bool:
        lowered = unquote_plus(name).lower()
        if lowered in self._exact:
            return True
        if any(segment in self._exact for segment in _SEGMENTS.split(lowered)):
            return True
        return any(rule in lowered for rule in self._substrings)

    def _scrub(self, url: str) -> str:
        hash_at = url.find("#")
        if hash_at != -1:
            url = url[:hash_at]
        query_at = url.find("?")
        if query_at == -1:
            return url
        base, query = url[:query_at], url[query_at + 1 :]
        if not query:
            return base
        parts = []
        for part in query.split("&"):
            name, eq, value = part.partition("=")
            if eq and value and self._sensitive(name):
                part = f"{name}={REDACTED}"
            parts.append(part)
        return f"{base}?{'&'.join(parts)}"


@lru_cache(maxsize=URL_CACHE_SIZE)
def path_of(url: str) -> str:
    """The path of an absolute or relative URL (no query, no fragment), '/' when empty."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return "/"
    if not path:
        return "/"
    return path if path.startswith("/") else "/" + path


# --------------------------------------------------------------------------- enricher


class Enricher:
    """Applies the enrichment rules to events; build one per process and reuse it."""

    def __init__(
        self,
        settings: CollectorSettings,
        matcher: CatalogMatcher,
        *,
        geoip: CountryLookup | None = None,
        ua_cache_size: int = UA_CACHE_SIZE,
    ) -> None:
        self.matcher = matcher
        self.country_header = settings.country_header.lower() if settings.country_header else None
        if geoip is None and settings.geoip_db_path is not None:
            geoip = MaxMindCountryLookup(settings.geoip_db_path)
        self._geoip = geoip
        self.scrubber = UrlScrubber(settings.scrub_query_params)
        self.client_info: Callable[[str], ClientInfo] = lru_cache(maxsize=ua_cache_size)(
            classify_user_agent
        )
        self._contexts: dict[tuple[Any, ...], tuple[ClientInfo, Context]] = {}
        self._providers: dict[str, str | None] = {}
        """Dependency host → catalog provider, for the process (bounded)."""

    def context(
        self,
        *,
        user_agent: str | None,
        probe_header: str | None = None,
        country_header: str | None = None,
        client_ip: str | None = None,
    ) -> RequestContext:
        """What the request itself says, computed once per request."""
        if user_agent is not None and len(user_agent) > MAX_USER_AGENT:
            user_agent = user_agent[:MAX_USER_AGENT]
        client = self.client_info(user_agent) if user_agent else NO_CLIENT
        header_run_id = probe_header.strip()[:128] if probe_header else None
        return RequestContext(
            user_agent=user_agent,
            client=client,
            country=self._country(country_header, client_ip),
            synthetic=probe_header is not None or is_probe_user_agent(user_agent),
            probe_run_id=header_run_id or None,
        )

    def _country(self, header_value: str | None, client_ip: str | None) -> str:
        code = country_from_header(header_value) if self.country_header else None
        if code is None and self._geoip is not None and client_ip:
            code = country_from_header(self._geoip.country(client_ip))
        return code or UNKNOWN

    def enrich(self, events: Iterable[RumEvent], ctx: RequestContext) -> None:
        """Complete ``events`` in place (each parser filled what its format carries).

        Parsers may share one ``Context`` object between the events of a batch; each distinct
        (context, user agent) pair is replaced by one new enriched ``Context``.
        """
        contexts: dict[tuple[int, str | None], Context] = {}
        providers = self._providers  # hosts repeat across beacons; the catalog is fixed
        if len(providers) >= PROVIDER_CACHE_SIZE:
            providers.clear()
        match, provider = self.matcher.match, self.matcher.provider
        scrub = self.scrubber.scrub
        for event in events:
            self._client(event, ctx, contexts)
            # Plain attribute writes: these values are valid by construction, and pydantic's
            # __setattr__ costs about a microsecond each on the hot path.
            fields = event.__dict__
            url = fields["url"] = scrub(fields["url"])
            path = fields["path"]
            if not path or path == "/" or "?" in path or "#" in path:
                path = fields["path"] = path_of(url) if url else "/"
            if fields["api_errors"] or fields["errors"]:
                self._page_errors(event)
            matched = match(fields["app"], path, fields["step_event"])
            fields["journey"] = matched.journey
            fields["step"] = matched.step
            for dependency in fields["dependencies"]:
                timing = dependency.__dict__
                if timing["provider"] is None:
                    host = timing["host"]
                    if host in providers:
                        timing["provider"] = providers[host]
                    else:
                        timing["provider"] = providers[host] = provider(host)

    def _client(
        self,
        event: RumEvent,
        ctx: RequestContext,
        contexts: dict[tuple[int, str | None], Context],
    ) -> None:
        user_agent = event.user_agent
        if user_agent and user_agent != ctx.user_agent:
            user_agent = user_agent[:MAX_USER_AGENT]
            client = self.client_info(user_agent)
            probe = is_probe_user_agent(user_agent)
        else:
            user_agent, client, probe = ctx.user_agent, ctx.client, False
        fields = event.__dict__
        fields["user_agent"] = user_agent
        original = fields["context"]
        cache_key = (id(original), user_agent)
        enriched = contexts.get(cache_key)
        if enriched is None:
            enriched = contexts[cache_key] = self._shared_context(original, client, ctx.country)
        fields["context"] = enriched
        if ctx.synthetic or probe or fields["synthetic"]:
            fields["synthetic"] = True
            fields["probe_run_id"] = fields["probe_run_id"] or ctx.probe_run_id

    def _shared_context(self, original: Context, client: ClientInfo, country: str) -> Context:
        """``_context(original, client, country)``, one object per distinct value for the whole
        process (contexts are never changed once enriched; most beacons share a handful)."""
        key = (*original.__dict__.values(), id(client), country)
        cached = self._contexts.get(key)
        if cached is not None and cached[0] is client:
            return cached[1]
        enriched = self._context(original, client, country)
        if len(self._contexts) >= CONTEXT_CACHE_SIZE:
            self._contexts.clear()
        self._contexts[key] = (client, enriched)  # holds ``client``: its id stays its own
        return enriched

    @staticmethod
    def _context(original: Context, client: ClientInfo, country: str) -> Context:
        connection = (original.connection_type or UNKNOWN).strip().lower()
        own_country = original.country
        if own_country and own_country != UNKNOWN:
            country = country_from_header(own_country) or UNKNOWN
        if client is NO_CLIENT:
            client = ClientInfo(
                device_class=original.device_class,
                browser=original.browser,
                browser_version=original.browser_version,
                os=original.os,
                os_version=original.os_version,
            )
        return Context.model_construct(
            device_class=client.device_class,
            browser=client.browser,
            browser_version=client.browser_version,
            os=client.os,
            os_version=client.os_version,
            connection_type=connection if connection in CONNECTION_TYPES else UNKNOWN,
            rtt_ms=original.rtt_ms,
            downlink_mbps=original.downlink_mbps,
            country=country,
        )

    def _page_errors(self, event: RumEvent) -> None:
        scrub = self.scrubber.scrub
        for api_error in event.api_errors:
            api_error.url = scrub(api_error.url)
        for error in event.errors:
            if error.source:
                error.source = scrub(error.source)
