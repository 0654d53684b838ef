"""Incident drills: named faults applied to the running demo shop.

Each drill is a set of fault rules on the demo services (real probes meet them for real) plus
what the traffic simulator reads from the same rules to shape what users experience. The
expected outcome says how JourneyLens should classify the incident.
"""

from __future__ import annotations

from dataclasses import dataclass

from journeylens.demo_shop.faults import FaultRule, FaultScope
from journeylens.demo_shop.settings import Service

DEPLOY_MARKER = "/_deploy/"
"""Path prefix of rules that change nothing on the wire and only tell the simulator about a
"deploy" (e.g. slow INP for mobile users)."""
THIRD_PARTY_WIDGET = "/static/widget.js"


@dataclass(frozen=True)
class Drill:
    name: str
    description: str
    expected: str
    faults: tuple[tuple[Service, FaultRule], ...]


DRILLS: dict[str, Drill] = {
    drill.name: drill
    for drill in (
        Drill(
            "payment-outage",
            "The payment provider answers 503 to every charge: probes fail at the payment "
            "step and users' payment API calls fail.",
            "confirmed incident on checkout, step payment, dependency payment",
            ((Service.PAYMENT, FaultRule(error_rate=1.0, status=503)),),
        ),
        Drill(
            "cdn-slow-country",
            "The CDN adds 3 s for users in France only: probes (no country) see nothing.",
            "RUM-only incident, dependency cdn, segment country=FR",
            ((Service.CDN, FaultRule(latency_ms=3000, only=FaultScope(country="FR"))),),
        ),
        Drill(
            "login-probes-broken",
            "The SSO rejects the probes' user agent (a WAF rule gone wrong): users log in.",
            "synthetic-only incident on login, step sso-authorize",
            (
                (
                    Service.SSO,
                    FaultRule(
                        error_rate=1.0,
                        status=403,
                        only=FaultScope(user_agent_contains="JourneyLensProbe"),
                    ),
                ),
            ),
        ),
        Drill(
            "mobile-inp-deploy",
            "A deploy makes interactions slow on mobile (+400 ms INP); desktop and probes fine.",
            "RUM-only incident, metric INP, segment device_class=mobile",
            (
                (
                    Service.SHOP,
                    FaultRule(
                        latency_ms=400,
                        path_prefix=f"{DEPLOY_MARKER}inp",
                        only=FaultScope(device_class="mobile"),
                    ),
                ),
            ),
        ),
        Drill(
            "third-party-errors",
            "A third-party widget served by the CDN throws in users' browsers.",
            "RUM-only incident, JS error rate, dependency cdn",
            ((Service.CDN, FaultRule(error_rate=1.0, path_prefix=THIRD_PARTY_WIDGET)),),
        ),
    )
}
