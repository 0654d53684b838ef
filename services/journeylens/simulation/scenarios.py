"""The incident scenarios: what breaks, and how JourneyLens should classify it.

The same names are used by the detection benchmark (``journeylens bench detection``) and by
the drills against the live demo (``journeylens drill <scenario>``). Each scenario builds the
:class:`~journeylens.simulation.traffic.Fault` that the traffic model injects, and states the
expected classification of the incident on its journey: the scope (``confirmed``,
``rum_only``, ``synthetic_only``), the suspected step, the suspected dependency (a catalog
provider, or a host that is not one) and the segment (``dimension=value``), ``None`` meaning
"none should be named".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from journeylens.simulation.traffic import (
    REVIEWS,
    CdnSlowness,
    Fault,
    PaymentOutage,
    ProbeLoginBroken,
    SlowInteractionDeploy,
    ThirdPartyScriptErrors,
)


@dataclass(frozen=True)
class Expected:
    journey: str
    scope: str
    step: str
    dependency: str | None = None
    segment: str | None = None
    """``dimension=value`` (e.g. ``country=DE``) or None for the whole population."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    expected: Expected
    make_fault: Callable[[float], Fault]
    """Build the fault, active from the given epoch second."""

    def fault(self, start_s: float, end_s: float | None = None) -> Fault:
        fault = self.make_fault(start_s)
        fault.end_s = end_s
        return fault


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="payment-outage",
        title="Payment provider outage",
        description=(
            "The payment provider answers 503 to 90% of charges. Users see the payment fail "
            "(API errors at the payment step, half of them retry once, the rest leave) and the "
            "checkout probes fail at the payment step from every location."
        ),
        expected=Expected("checkout", "confirmed", "payment", dependency="payment"),
        make_fault=lambda at: PaymentOutage(at),
    ),
    Scenario(
        name="cdn-slow-country",
        title="CDN slowness in one country",
        description=(
            "The CDN's German PoP degrades: every CDN request of users in DE takes ~2.4 s more, "
            "so pages whose largest element comes from the CDN (cart, product, search results) "
            "load slowly there. Probes run from cloud regions and see nothing."
        ),
        expected=Expected("checkout", "rum_only", "cart", dependency="cdn", segment="country=DE"),
        make_fault=lambda at: CdnSlowness(at, country="DE"),
    ),
    Scenario(
        name="login-probes-broken",
        title="Login broken for probes only",
        description=(
            "The SSO's bot protection starts challenging the headless probe browser: login "
            "probes time out at the SSO step from every location, while real users sign in "
            "normally (the HTTP API probe of the SSO passes too)."
        ),
        expected=Expected("login", "synthetic_only", "sso-authorize", dependency="sso"),
        make_fault=lambda at: ProbeLoginBroken(at),
    ),
    Scenario(
        name="mobile-inp-deploy",
        title="Slow INP for mobile users after a deploy",
        description=(
            "A deploy ships heavy filtering JavaScript on the search results page: interactions "
            "take ~3x longer on mobile devices (INP), desktops are unaffected. Probes do not "
            "interact, so they see nothing."
        ),
        expected=Expected("search", "rum_only", "search-results", segment="device_class=mobile"),
        make_fault=lambda at: SlowInteractionDeploy(at),
    ),
    Scenario(
        name="third-party-errors",
        title="Third-party script errors",
        description=(
            f"The reviews widget embedded on product pages ({REVIEWS}) breaks: its API fails "
            "for 40% of page views and its script throws a TypeError there. The page still "
            "works for probes, which do not run the widget."
        ),
        expected=Expected("search", "rum_only", "product", dependency=REVIEWS),
        make_fault=lambda at: ThirdPartyScriptErrors(at),
    ),
)

BY_NAME: dict[str, Scenario] = {s.name: s for s in SCENARIOS}


def scenario(name: str) -> Scenario:
    """The scenario called ``name``; the error lists the known names."""
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise KeyError(f"unknown scenario {name!r} (known: {known})") from None
