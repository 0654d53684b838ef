"""A realistic traffic model of the demo shop: real-user sessions and probe runs over time.

Real users (``rum.beacons.v1`` event dicts, as the collector would produce them):

- sessions arrive as a Poisson process whose rate follows a daily cycle (peak in the European
  evening, trough at night); a little more mobile traffic in the evening;
- each visitor has a country (a German-centred EUR shop), a device class, a browser and OS, a
  connection type (Safari reports none: ``unknown``) with its round-trip time and bandwidth;
- a session walks a route of journey steps (log-in → search → product → cart → checkout →
  payment → confirmation, or a shorter one) page by page, with think time between pages; after
  each page it goes on with the step's base probability, lowered when the page was slow (each
  second of LCP beyond 2 s costs ~12 %) and when the page failed (a failed payment is retried
  once by half the users, the others leave);
- vitals are lognormal per device and network (LCP, FCP, TTFB, INP when the user interacted,
  CLS as a mixture of stable and shifting pages), with navigation timing phases and resource
  timings grouped per host: the shop's own API, the CDN, the payment provider, the SSO, a
  reviews widget and an analytics tag, each with its own latency and a tiny failure rate;
- background noise: a few first-party JS errors and failed API calls, as on any real site.

Probes (``synthetic.results.v1`` dicts): every journey with a probe schedule is run at its
interval from each probe location (two by default), step by step as the catalog says (HTTP or
browser), with timing phases and, for browser steps, vitals; a rare transient probe error.

Faults (:class:`Fault` subclasses) change the model from a given time: they see every user
page (:meth:`Fault.page`) and every probe step (:meth:`Fault.probe_step`). The model is
deterministic for a seed: the same profile, seed and faults give the same events.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Final

from journeylens.contracts.catalog import Catalog, Journey

SHOP: Final = "shop.localhost"
CDN: Final = "cdn.localhost"
PAY: Final = "pay.localhost"
SSO: Final = "sso.localhost"
REVIEWS: Final = "reviews.widgetly.example"
"""A third-party reviews widget embedded on product pages."""
ANALYTICS: Final = "tags.metricly.example"
"""A third-party analytics tag on every page."""

# ---------------------------------------------------------------------------------- visitors

COUNTRIES: Final = (
    ("DE", 34.0),
    ("FR", 14.0),
    ("NL", 9.0),
    ("GB", 8.0),
    ("AT", 7.0),
    ("US", 7.0),
    ("IT", 6.0),
    ("ES", 6.0),
    ("PL", 4.0),
    ("BE", 3.0),
    ("CH", 2.0),
)


@dataclass(frozen=True)
class Network:
    name: str
    rtt_ms: float
    downlink_mbps: float
    load_factor: float
    """How much slower pages load than on a typical Wi-Fi."""


NETWORKS: Final = {
    "ethernet": Network("ethernet", 20, 50, 0.9),
    "wifi": Network("wifi", 40, 20, 1.0),
    "4g": Network("4g", 85, 8, 1.15),
    "3g": Network("3g", 300, 1.2, 1.9),
}


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    load_factor: float
    """CPU and rendering cost relative to a desktop."""
    inp_median_ms: float
    networks: tuple[tuple[str, float], ...]
    browsers: tuple[tuple[str, float], ...]


DEVICES: Final = {
    "desktop": DeviceProfile(
        "desktop",
        1.0,
        55.0,
        (("ethernet", 25), ("wifi", 72), ("4g", 3)),
        (("Chrome", 60), ("Edge", 14), ("Safari", 12), ("Firefox", 11), ("Opera", 3)),
    ),
    "mobile": DeviceProfile(
        "mobile",
        1.45,
        100.0,
        (("wifi", 40), ("4g", 48), ("3g", 12)),
        (("Chrome Mobile", 56), ("Mobile Safari", 36), ("Samsung Internet", 8)),
    ),
    "tablet": DeviceProfile(
        "tablet",
        1.25,
        85.0,
        (("wifi", 85), ("4g", 15)),
        (("Mobile Safari", 62), ("Chrome Mobile", 38)),
    ),
}

_BROWSERS: Final = {
    # browser → (os, version, user agent, reports navigator.connection)
    "Chrome": (
        "Windows",
        "126.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        True,
    ),
    "Edge": (
        "Windows",
        "126.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
        True,
    ),
    "Safari": (
        "Mac OS X",
        "17.5",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.5 Safari/605.1.15",
        False,
    ),
    "Firefox": (
        "Windows",
        "127.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
        False,
    ),
    "Opera": (
        "Windows",
        "111.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0",
        True,
    ),
    "Chrome Mobile": (
        "Android",
        "126.0",
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36",
        True,
    ),
    "Mobile Safari": (
        "iOS",
        "17.5",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        False,
    ),
    "Samsung Internet": (
        "Android",
        "25.0",
        "Mozilla/5.0 (Linux; Android 13; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
        True,
    ),
}


@dataclass(frozen=True, slots=True)
class Visitor:
    country: str
    device_class: str
    browser: str
    network: str
    context: dict[str, Any]
    user_agent: str


class _Choice:
    """Weighted choice with precomputed cumulative weights (fast, deterministic)."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, pairs: Sequence[tuple[str, float]]) -> None:
        self.values = [v for v, _ in pairs]
        self.cum = list(accumulate(w for _, w in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> str:
        return self.values[bisect(self.cum, rng.random() * self.total)]


_COUNTRY_CHOICE: Final = _Choice(COUNTRIES)
_NETWORK_CHOICE: Final = {d: _Choice(p.networks) for d, p in DEVICES.items()}
_BROWSER_CHOICE: Final = {d: _Choice(p.browsers) for d, p in DEVICES.items()}

# ------------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class PageSpec:
    """How one journey step looks to a real user."""

    journey: str
    step: str
    path: str
    kind: str = "page_view"
    step_event: str | None = None
    load: float = 1.0
    """LCP scale of this page (1.0 = a typical page)."""
    server_ms: float = 140.0
    """Median server time (TTFB without the network)."""
    inp: float = 1.0
    interactive: float = 0.7
    """Share of views with an interaction (INP reported)."""
    cdn_requests: int = 3
    cdn_lcp_weight: float = 0.3
    """Share of a CDN delay that lands on the LCP (1.0: the LCP element comes from the CDN)."""
    api_requests: int = 2
    extra_hosts: tuple[tuple[str, int, float], ...] = ()
    """(host, requests, median ms per request)."""
    cont: float = 0.0
    """Base probability to go on to the next page of the route."""


PAGES: Final = {
    ("login", "login-page"): PageSpec(
        "login", "login-page", "/login", load=0.85, inp=0.9, cont=0.88
    ),
    ("login", "sso-authorize"): PageSpec(
        "login",
        "sso-authorize",
        "/account",
        kind="soft_navigation",
        step_event="login:sso",
        load=0.7,
        cdn_requests=0,
        api_requests=1,
        extra_hosts=((SSO, 3, 180.0),),
        cont=0.97,
    ),
    ("login", "account"): PageSpec("login", "account", "/account", load=0.9, cont=0.6),
    ("search", "search-results"): PageSpec(
        "search",
        "search-results",
        "/search",
        load=1.1,
        server_ms=180.0,
        inp=1.2,
        interactive=0.85,
        cdn_requests=12,
        cdn_lcp_weight=0.8,
        api_requests=3,
        cont=0.65,
    ),
    ("search", "product"): PageSpec(
        "search",
        "product",
        "/product/{id}",
        load=1.15,
        inp=1.1,
        cdn_requests=6,
        cdn_lcp_weight=1.0,
        extra_hosts=((REVIEWS, 2, 160.0),),
        cont=0.45,
    ),
    ("checkout", "cart"): PageSpec(
        "checkout", "cart", "/cart", cdn_requests=8, cdn_lcp_weight=1.0, cont=0.8
    ),
    ("checkout", "checkout-page"): PageSpec(
        "checkout", "checkout-page", "/checkout", load=0.9, interactive=0.95, cont=0.88
    ),
    ("checkout", "payment"): PageSpec(
        "checkout",
        "payment",
        "/checkout",
        kind="soft_navigation",
        step_event="checkout:payment",
        load=0.6,
        interactive=0.9,
        cdn_requests=0,
        api_requests=0,
        extra_hosts=((PAY, 1, 450.0),),
        cont=0.98,
    ),
    ("checkout", "confirmation"): PageSpec(
        "checkout", "confirmation", "/checkout/confirmation", load=0.85, interactive=0.3
    ),
}
LOGIN_ROUTE: Final = (
    ("login", "login-page"),
    ("login", "sso-authorize"),
    ("login", "account"),
)
SHOPPING_ROUTE: Final = (("search", "search-results"), ("search", "product"))
CHECKOUT_ROUTE: Final = (
    ("checkout", "cart"),
    ("checkout", "checkout-page"),
    ("checkout", "payment"),
    ("checkout", "confirmation"),
)
ROUTES: Final = (
    (LOGIN_ROUTE + SHOPPING_ROUTE + CHECKOUT_ROUTE, 0.22),
    (SHOPPING_ROUTE + CHECKOUT_ROUTE, 0.60),
    (CHECKOUT_ROUTE, 0.18),
)
"""Routes a session may walk (weights): log-in first, straight to search, or a saved cart."""

ORDER_VALUE_EUR: Final = 85.0


def abandonment_penalty(lcp_ms: float) -> float:
    """Multiplier of the probability to go on after a page that took ``lcp_ms`` to show."""
    return max(0.35, 1.0 - 0.12 * max(0.0, lcp_ms - 2000.0) / 1000.0)


# ------------------------------------------------------------------------------------ faults


@dataclass
class PageConditions:
    """What faults may change on one user page view (mutable, one per view)."""

    spec: PageSpec
    visitor: Visitor
    at: float
    lcp_extra_ms: float = 0.0
    inp_factor: float = 1.0
    host_delay_ms: dict[str, float] = field(default_factory=dict)
    """Extra milliseconds per request, per host."""
    host_failure: dict[str, float] = field(default_factory=dict)
    """Probability that the host's requests of this page fail."""
    api_error: tuple[str, str, int] | None = None
    """(url, method, status) of the call that fails when a ``host_failure`` hits."""
    blocking: bool = False
    """A failed call blocks the user (cannot go on)."""
    js_error: tuple[str, str, float] | None = None
    """(message, source URL, probability) of a JS error on the page."""


@dataclass(frozen=True)
class ProbeFailure:
    """How a probe step fails."""

    error: str | None = None
    http_status: int | None = None
    assertion: str | None = None
    expected: str | None = None
    actual: str | None = None
    extra_ms: float = 0.0


@dataclass
class Fault:
    """A change of the model from ``start_s`` (epoch seconds) until ``end_s`` (if given)."""

    start_s: float
    end_s: float | None = None

    def active(self, at: float) -> bool:
        return at >= self.start_s and (self.end_s is None or at < self.end_s)

    def page(self, page: PageConditions) -> None:
        """Change one user page view (called only while active)."""

    def probe_step(self, journey: str, step: str, location: str) -> ProbeFailure | None:
        """How a probe step fails (called only while active), or None."""
        return None


@dataclass
class PaymentOutage(Fault):
    """The payment provider answers 503 to most charges: users and probes fail at payment."""

    failure_share: float = 0.9
    status: int = 503

    def page(self, page: PageConditions) -> None:
        if page.spec.step == "payment":
            page.host_failure[PAY] = self.failure_share
            page.api_error = (f"https://{PAY}/v1/charges", "POST", self.status)
            page.blocking = True

    def probe_step(self, journey: str, step: str, location: str) -> ProbeFailure | None:
        if journey == "checkout" and step == "payment":
            return ProbeFailure(
                http_status=self.status,
                assertion="$.status equals 'authorized'",
                expected="authorized",
                actual="null",
            )
        return None


@dataclass
class CdnSlowness(Fault):
    """The CDN is slow for users in one country (a degraded PoP): probes are not there."""

    country: str = "DE"
    delay_ms: float = 2400.0
    """Median extra time per CDN request."""

    def page(self, page: PageConditions) -> None:
        if page.visitor.country == self.country and page.spec.cdn_requests:
            page.host_delay_ms[CDN] = self.delay_ms
            page.lcp_extra_ms += page.spec.cdn_lcp_weight * self.delay_ms


@dataclass
class ProbeLoginBroken(Fault):
    """The SSO's bot protection starts challenging the headless probe browser at sign-in;
    real users (and the HTTP API probe) pass."""

    def probe_step(self, journey: str, step: str, location: str) -> ProbeFailure | None:
        if journey == "login" and step == "sso-authorize":
            return ProbeFailure(
                error="timeout 10000 ms waiting for selector '#username'",
                assertion="wait_for #username",
                extra_ms=10_000.0,
            )
        return None


@dataclass
class SlowInteractionDeploy(Fault):
    """A deploy ships heavy JavaScript on one page: interactions get slow on mobile devices."""

    journey: str = "search"
    step: str = "search-results"
    device_class: str = "mobile"
    factor: float = 3.2

    def page(self, page: PageConditions) -> None:
        spec = page.spec
        if (
            spec.journey == self.journey
            and spec.step == self.step
            and page.visitor.device_class == self.device_class
        ):
            page.inp_factor *= self.factor


@dataclass
class ThirdPartyScriptErrors(Fault):
    """A third-party widget breaks: its API fails and its script throws on the pages using it."""

    host: str = REVIEWS
    error_share: float = 0.4

    def page(self, page: PageConditions) -> None:
        if any(h == self.host for h, _, _ in page.spec.extra_hosts):
            page.host_failure[self.host] = self.error_share
            page.js_error = (
                "TypeError: Cannot read properties of undefined (reading 'rating')",
                f"https://{self.host}/v3/widget.js",
                self.error_share,
            )


# ----------------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class TrafficProfile:
    peak_sessions_per_minute: float = 240.0
    trough_ratio: float = 0.3
    """Sessions per minute at the night trough, relative to the evening peak."""
    peak_hour_utc: float = 17.0
    probe_locations: tuple[str, ...] = ("eu-central-1", "us-east-1")
    """Probe locations (the catalog's are replaced: the simulation runs two everywhere)."""
    app: str = "demo-shop"
    origin: str = f"https://{SHOP}"
    js_error_rate: float = 0.006
    api_error_rate: float = 0.002
    request_failure_rate: float = 0.0008
    probe_error_rate: float = 0.002
    probe_interval_s: float | None = None
    """Every probed journey's interval, replacing the catalog's (None: the catalog's). The live
    benchmark's short windows need a probe run per window, as a minute window has with the
    catalog's 60 s."""

    def sessions_per_minute(self, at: float) -> float:
        hour = (at % 86400) / 3600.0
        wave = 0.5 + 0.5 * math.cos(2 * math.pi * (hour - self.peak_hour_utc) / 24.0)
        return self.peak_sessions_per_minute * (self.trough_ratio + (1 - self.trough_ratio) * wave)

    def mobile_share(self, at: float) -> float:
        hour = (at % 86400) / 3600.0
        evening = 0.5 + 0.5 * math.cos(2 * math.pi * (hour - 20.0) / 24.0)
        return 0.5 + 0.1 * evening


# ------------------------------------------------------------------------------------- model


class _Session:
    __slots__ = ("sid", "visitor", "route", "index", "attempts")

    def __init__(self, sid: str, visitor: Visitor, route: tuple[tuple[str, str], ...]) -> None:
        self.sid = sid
        self.visitor = visitor
        self.route = route
        self.index = 0
        self.attempts = 0


_MINUTE_ISO: dict[int, str] = {}


def iso_ms(at: float) -> str:
    """``2025-03-03T14:00:07.123Z``."""
    ms = round(at * 1000)
    minute, rest = divmod(ms, 60_000)
    prefix = _MINUTE_ISO.get(minute)
    if prefix is None:
        if len(_MINUTE_ISO) > 20_000:
            _MINUTE_ISO.clear()
        prefix = _MINUTE_ISO[minute] = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
    return f"{prefix}{rest // 1000:02d}.{rest % 1000:03d}Z"


class TrafficModel:
    """Generates one minute of RUM events and probe results at a time, in event-time order.

    ``minute(start)`` must be called for consecutive minutes (or ``span`` for consecutive
    shorter steps, as the live benchmark does); sessions that started earlier go
    on page by page (their next page is due at a later time), so a fault starting at ``t``
    affects every page shown from ``t`` on. :meth:`fork` copies the whole state (random
    generator included) so runs with different faults can continue the same history.
    """

    def __init__(
        self,
        catalog: Catalog,
        profile: TrafficProfile | None = None,
        *,
        seed: int = 1,
        faults: Sequence[Fault] = (),
    ) -> None:
        self.catalog = catalog
        self.profile = profile or TrafficProfile()
        self.seed = seed
        self.faults: list[Fault] = list(faults)
        self.rng = random.Random(seed)  # noqa: S311 - a seeded simulation, not secrets
        self._due: list[tuple[float, int, _Session]] = []
        self._seq = 0
        self._ids = 0
        self._providers = _providers(catalog)
        self._routes = _Choice([(str(i), w) for i, (_, w) in enumerate(ROUTES)])
        self._probed = [j for j in catalog.journeys if j.probe is not None]

    # -- public ----------------------------------------------------------------------------
    def fork(self, faults: Sequence[Fault] = ()) -> TrafficModel:
        """An independent copy continuing from the same state, with ``faults`` added."""
        twin = TrafficModel.__new__(TrafficModel)
        twin.catalog = self.catalog
        twin.profile = self.profile
        twin.seed = self.seed
        twin.faults = [*self.faults, *faults]
        twin.rng = random.Random()  # noqa: S311 - a seeded simulation, not secrets
        twin.rng.setstate(self.rng.getstate())
        twin._due = [(t, n, _copy_session(s)) for t, n, s in self._due]
        twin._seq = self._seq
        twin._ids = self._ids
        twin._providers = self._providers
        twin._routes = self._routes
        twin._probed = self._probed
        return twin

    def minute(self, start: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(RUM events, probe results) with event times in ``[start, start + 60)``."""
        return self.span(start, 60.0)

    def span(
        self, start: float, seconds: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(RUM events, probe results) with event times in ``[start, start + seconds)``; spans
        must follow each other (``span(t, 60)`` is ``minute(t)``, draw for draw)."""
        end = start + seconds
        rng = self.rng
        arrivals = _poisson(rng, self.profile.sessions_per_minute(start) * (seconds / 60.0))
        for _ in range(arrivals):
            at = start + rng.random() * seconds
            self._schedule(at, self._new_session(at))
        events: list[dict[str, Any]] = []
        due = self._due
        while due and due[0][0] < end:
            at, _, session = heapq.heappop(due)
            self._visit(session, at, events)
        return events, self._probes(start, end)

    # -- sessions --------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self.seed:x}-{self._ids:09x}"

    def _schedule(self, at: float, session: _Session) -> None:
        self._seq += 1
        heapq.heappush(self._due, (at, self._seq, session))

    def _new_session(self, at: float) -> _Session:
        rng = self.rng
        route = ROUTES[int(self._routes.pick(rng))][0]
        return _Session(self._new_id("s"), self._visitor(at), route)

    def _visitor(self, at: float) -> Visitor:
        rng = self.rng
        country = _COUNTRY_CHOICE.pick(rng)
        r = rng.random()
        mobile = self.profile.mobile_share(at)
        device = "mobile" if r < mobile else ("tablet" if r < mobile + 0.06 else "desktop")
        network = _NETWORK_CHOICE[device].pick(rng)
        browser = _BROWSER_CHOICE[device].pick(rng)
        os_name, version, ua, reports_connection = _BROWSERS[browser]
        net = NETWORKS[network]
        context = {
            "device_class": device,
            "browser": browser,
            "browser_version": version,
            "os": os_name,
            "connection_type": network if reports_connection else "unknown",
            "rtt_ms": net.rtt_ms if reports_connection else None,
            "downlink_mbps": net.downlink_mbps if reports_connection else None,
            "country": country,
        }
        return Visitor(country, device, browser, network, context, ua)

    def _visit(self, session: _Session, at: float, events: list[dict[str, Any]]) -> None:
        rng = self.rng
        key = session.route[session.index]
        spec = PAGES[key]
        page = PageConditions(spec, session.visitor, at)
        for fault in self.faults:
            if fault.active(at):
                fault.page(page)
        lcp, failed = self._page_events(session, page, events)
        go_on = spec.cont * abandonment_penalty(lcp)
        if failed and page.blocking:
            session.attempts += 1
            if session.attempts <= 1 and rng.random() < 0.5:
                self._schedule(at + _think(rng, 8.0), session)  # retry the same step
            return
        if session.index + 1 >= len(session.route) or rng.random() >= go_on:
            return
        session.index += 1
        self._schedule(at + _think(rng, 12.0), session)

    def _page_events(
        self, session: _Session, page: PageConditions, events: list[dict[str, Any]]
    ) -> tuple[float, bool]:
        """Append the page's events; returns (LCP, whether a blocking call failed)."""
        rng = self.rng
        profile = self.profile
        spec, visitor, at = page.spec, page.visitor, page.at
        device = DEVICES[visitor.device_class]
        net = NETWORKS[visitor.network]
        gauss, exp = rng.gauss, math.exp
        scale = device.load_factor * net.load_factor
        ttfb = 40.0 + 2.2 * net.rtt_ms + spec.server_ms * exp(0.45 * gauss())
        lcp = 950.0 * spec.load * scale * exp(0.42 * gauss()) + page.lcp_extra_ms
        lcp = max(lcp, ttfb + 80.0)
        fcp = max(ttfb + 40.0, lcp * (0.5 + 0.35 * rng.random()))
        cls = (0.004 if rng.random() < 0.62 else 0.055) * exp(0.8 * gauss())
        vitals: dict[str, float] = {
            "lcp_ms": int(lcp),
            "fcp_ms": int(fcp),
            "ttfb_ms": int(ttfb),
            "cls": int(cls * 10_000) / 10_000,
        }
        if rng.random() < spec.interactive:
            inp = device.inp_median_ms * spec.inp * exp(0.55 * gauss()) * page.inp_factor
            vitals["inp_ms"] = max(8, int(inp / 8 + 0.5) * 8)  # INP is reported in 8 ms steps
        soft = spec.kind == "soft_navigation"
        duration = max(fcp, lcp * (0.75 + 0.3 * rng.random()))
        if soft:
            navigation: dict[str, float] = {"duration_ms": int(duration)}
        else:
            dns = 0 if rng.random() < 0.7 else int(5.0 + 0.5 * net.rtt_ms * exp(0.5 * gauss()))
            connect = int(net.rtt_ms * exp(0.3 * gauss()))
            tls = int(net.rtt_ms * exp(0.3 * gauss()))
            navigation = {
                "dns_ms": dns,
                "connect_ms": connect,
                "tls_ms": tls,
                "request_ms": max(1, int(ttfb) - dns - connect - tls),
                "response_ms": int(5.0 + 30.0 / net.downlink_mbps * exp(0.4 * gauss())),
                "dom_interactive_ms": int(fcp * 0.95),
                "dom_content_loaded_ms": int(fcp * 1.05),
                "load_event_ms": int(duration),
                "duration_ms": int(duration),
            }
        deps, failed_hosts = self._dependencies(page, net)
        path = spec.path.replace("{id}", f"p-{100 + rng.randrange(60)}")
        pid = self._new_id("p")
        base = {
            "source": "journeylens",
            "app": profile.app,
            "journey": spec.journey,
            "step": spec.step,
            "session_id": session.sid,
            "page_id": pid,
            "url": profile.origin + path,
            "path": path,
            "context": visitor.context,
            "synthetic": False,
            "sample_rate": 1.0,
            "user_agent": visitor.user_agent,
            "schema_version": 1,
        }
        events.append(
            {
                **base,
                "event_id": self._new_id("e"),
                "kind": spec.kind,
                "timestamp": iso_ms(at),
                "received_at": iso_ms(at + 0.3 + 2.0 * rng.random()),
                "navigation_type": "soft-navigation" if soft else "navigate",
                "vitals": vitals,
                "navigation": navigation,
                "dependencies": deps,
                "step_event": spec.step_event,
            }
        )
        blocked = False
        later = at + min(duration, 30_000.0) / 1000.0
        if page.api_error is not None and page.api_error[0].split("/")[2] in failed_hosts:
            url, method, status = page.api_error
            blocked = True
            events.append(self._api_error(base, later, url, method, status, visitor))
        elif rng.random() < profile.api_error_rate:
            url = f"{profile.origin}/api/recommendations"
            events.append(self._api_error(base, later, url, "GET", 500, visitor))
        if page.js_error is not None and rng.random() < page.js_error[2]:
            message, source, _ = page.js_error
            events.append(self._js_error(base, later, message, source))
        elif rng.random() < profile.js_error_rate:
            events.append(
                self._js_error(
                    base,
                    later,
                    "TypeError: Cannot read properties of null (reading 'value')",
                    f"https://{CDN}/static/app.js",
                )
            )
        if spec.step == "confirmation":
            events.append(
                {
                    **base,
                    "event_id": self._new_id("e"),
                    "kind": "conversion",
                    "timestamp": iso_ms(later),
                    "received_at": iso_ms(later + 0.5),
                    "conversion_value": ORDER_VALUE_EUR,
                    "currency": "EUR",
                    "step_event": "order",
                }
            )
        return lcp, blocked

    def _dependencies(
        self, page: PageConditions, net: Network
    ) -> tuple[list[dict[str, Any]], set[str]]:
        rng = self.rng
        spec = page.spec
        hosts: list[tuple[str, int, float]] = [(ANALYTICS, 1, 70.0)]
        if spec.api_requests:
            hosts.append((SHOP, spec.api_requests, 90.0 + spec.server_ms * 0.5))
        if spec.cdn_requests:
            hosts.append((CDN, spec.cdn_requests, 30.0))
        hosts.extend(spec.extra_hosts)
        deps: list[dict[str, Any]] = []
        failed_hosts: set[str] = set()
        gauss, exp = rng.gauss, math.exp
        noise = self.profile.request_failure_rate
        delays, shares = page.host_delay_ms, page.host_failure
        for host, requests, median in hosts:
            per_request = (median + net.rtt_ms) * exp(0.35 * gauss())
            if delays:
                per_request += delays.get(host, 0.0) * exp(0.3 * gauss())
            share = shares.get(host, 0.0) if shares else 0.0
            if share and rng.random() < share:
                failures = requests
            else:
                # at most one failed request per host and page: noise is rare
                failures = 1 if rng.random() < noise * requests else 0
            if failures:
                failed_hosts.add(host)
            size = 2_000 if host in (SHOP, PAY, SSO) else 25_000
            deps.append(
                {
                    "host": host,
                    "provider": self._providers.get(host),
                    "requests": requests,
                    "failures": failures,
                    "total_duration_ms": int(per_request * requests),
                    "max_duration_ms": int(per_request * (1.0 + 0.8 * rng.random())),
                    "transfer_bytes": requests * size,
                }
            )
        return deps, failed_hosts

    def _api_error(
        self,
        base: dict[str, Any],
        at: float,
        url: str,
        method: str,
        status: int,
        visitor: Visitor,
    ) -> dict[str, Any]:
        host = url.split("/")[2]
        return {
            **base,
            "event_id": self._new_id("e"),
            "kind": "error",
            "timestamp": iso_ms(at),
            "received_at": iso_ms(at + 0.4),
            "api_errors": [
                {
                    "url": url,
                    "method": method,
                    "status": status,
                    "duration_ms": round(200.0 + NETWORKS[visitor.network].rtt_ms, 1),
                    "host": host,
                }
            ],
        }

    def _js_error(
        self, base: dict[str, Any], at: float, message: str, source: str
    ) -> dict[str, Any]:
        line = 1 + (len(message) * 31 + len(source)) % 900
        return {
            **base,
            "event_id": self._new_id("e"),
            "kind": "error",
            "timestamp": iso_ms(at),
            "received_at": iso_ms(at + 0.4),
            "errors": [
                {
                    "message": message,
                    "type": message.split(":", 1)[0],
                    "source": source,
                    "line": line,
                    "column": 17,
                    "stack": f"{message}\n    at render ({source}:{line}:17)",
                    "count": 1,
                }
            ],
        }

    # -- probes ----------------------------------------------------------------------------
    def _probes(self, start: float, end: float) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for journey in self._probed:
            assert journey.probe is not None
            interval = self.profile.probe_interval_s or journey.probe.interval_s
            for i, location in enumerate(self.profile.probe_locations):
                # each location runs at its own offset within the interval
                offset = (7.0 + 13.0 * i + 3.0 * len(journey.id)) % interval
                first = math.ceil((start - offset) / interval) * interval + offset
                at = first
                while at < end:
                    results.append(self._probe_run(journey, location, at))
                    at += interval
        return results

    def _probe_run(self, journey: Journey, location: str, at: float) -> dict[str, Any]:
        rng = self.rng
        run_id = self._new_id("r")
        steps: list[dict[str, Any]] = []
        clock = at
        failed_step: str | None = None
        error: str | None = None
        status = "passed"
        transient = rng.random() < self.profile.probe_error_rate
        transient_step = rng.randrange(len(journey.steps)) if transient else -1
        for index, step in enumerate(journey.steps):
            assert step.probe is not None
            kind = step.probe.kind
            if failed_step is not None:
                steps.append(_skipped(step.id, kind, clock))
                continue
            failure: ProbeFailure | None = None
            for fault in self.faults:
                if fault.active(clock):
                    failure = failure or fault.probe_step(journey.id, step.id, location)
            if failure is None and index == transient_step:
                failure = ProbeFailure(error="connection reset by peer (after 1 retry)")
            result = self._probe_step(step.id, kind, step.probe, clock, failure)
            steps.append(result)
            clock += result["duration_ms"] / 1000.0
            if failure is not None:
                failed_step = step.id
                error = failure.error or (
                    f"assertion failed: {failure.assertion}" if failure.assertion else "failed"
                )
                status = "error" if failure.error and failure.assertion is None else "failed"
        return {
            "run_id": run_id,
            "journey": journey.id,
            "location": location,
            "status": status,
            "started_at": iso_ms(at),
            "finished_at": iso_ms(clock),
            "duration_ms": round((clock - at) * 1000.0, 1),
            "steps": steps,
            "failed_step": failed_step,
            "error": error,
            "probe_version": "sim-1",
            "schema_version": 1,
        }

    def _probe_step(
        self, step_id: str, kind: str, probe: Any, at: float, failure: ProbeFailure | None
    ) -> dict[str, Any]:
        lognorm = self.rng.lognormvariate
        dns, connect, tls = 2.0 * lognorm(0, 0.3), 6.0 * lognorm(0, 0.3), 9.0 * lognorm(0, 0.3)
        ttfb = 110.0 * lognorm(0.0, 0.35)
        transfer = 8.0 * lognorm(0.0, 0.5)
        duration = dns + connect + tls + ttfb + transfer
        vitals: dict[str, float] | None = None
        url: str | None = None
        method: str | None = None
        if kind == "browser":
            duration = 650.0 * lognorm(0.0, 0.25) + ttfb
            vitals = {"lcp_ms": round(duration * 0.8, 1), "ttfb_ms": round(ttfb, 1), "cls": 0.0}
        elif probe.http is not None:
            url, method = probe.http.url, probe.http.method
        result: dict[str, Any] = {
            "step": step_id,
            "kind": kind,
            "status": "passed",
            "started_at": iso_ms(at),
            "duration_ms": round(duration, 1),
            "url": url,
            "method": method,
            "http_status": 200 if kind == "http" else None,
            "timings": {
                "dns_ms": round(dns, 1),
                "connect_ms": round(connect, 1),
                "tls_ms": round(tls, 1),
                "ttfb_ms": round(ttfb, 1),
                "transfer_ms": round(transfer, 1),
            },
            "vitals": vitals,
            "failed_assertions": [],
            "error": None,
            "attempts": 1,
        }
        if failure is None:
            return result
        result["status"] = "failed"
        result["duration_ms"] = round(duration + failure.extra_ms, 1)
        if failure.http_status is not None:
            result["http_status"] = failure.http_status
        if failure.assertion is not None:
            result["failed_assertions"] = [
                {
                    "assertion": failure.assertion,
                    "expected": failure.expected,
                    "actual": failure.actual,
                    "message": failure.error or f"{failure.assertion} did not hold",
                }
            ]
        if failure.error is not None:
            result["error"] = failure.error
            result["attempts"] = 2
        return result


def _skipped(step_id: str, kind: str, at: float) -> dict[str, Any]:
    return {
        "step": step_id,
        "kind": kind,
        "status": "skipped",
        "started_at": iso_ms(at),
        "duration_ms": 0.0,
        "timings": {},
        "failed_assertions": [],
        "attempts": 1,
    }


def _copy_session(session: _Session) -> _Session:
    twin = _Session(session.sid, session.visitor, session.route)
    twin.index, twin.attempts = session.index, session.attempts
    return twin


def _think(rng: random.Random, median_s: float) -> float:
    return min(180.0, max(2.0, median_s * rng.lognormvariate(0.0, 0.6)))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _providers(catalog: Catalog) -> dict[str, str]:
    """Host → catalog provider (the collector's mapping, for the simulated hosts)."""
    out: dict[str, str] = {}
    for journey in catalog.journeys:
        for dep in journey.dependencies:
            for host in dep.hosts:
                out.setdefault(host, dep.provider)
    return out
