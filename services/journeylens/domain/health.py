"""Health of one journey step (or journey) over one window, from its finalized aggregate.

Each side is judged against the step's `Thresholds`:

- RUM: p75 of a vital beyond its threshold, error rate beyond the threshold, or Apdex below
  ``min_apdex`` → degraded; error rate at or beyond twice the threshold → failing. Judged only
  with at least ``min_views`` sampled views (a vital: at least ``min_views`` samples).
- Synthetic: availability below ``min_availability`` or p95 step duration beyond
  ``duration_p95_ms`` → degraded; availability ≤ 0.5 (or every run failed) → failing.

The status is the worse of the two sides (``no_data`` when neither has data); the scope says
which side is unhealthy: ``confirmed`` (both), ``rum_only``, ``synthetic_only`` or ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from journeylens.contracts.catalog import Thresholds
from journeylens.contracts.common import JOURNEY_LEVEL
from journeylens.contracts.experience_aggregates_v1 import HealthStatus, Scope

_RANK = {
    HealthStatus.NO_DATA: -1,
    HealthStatus.HEALTHY: 0,
    HealthStatus.DEGRADED: 1,
    HealthStatus.FAILING: 2,
}


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    min_apdex: float = 0.85
    min_views: int = 5
    """Fewer sampled views than this: the RUM side is not judged (too few to say)."""
    failing_error_factor: float = 2.0
    failing_availability: float = 0.5


DEFAULT_POLICY = HealthPolicy()


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    scope: str
    reasons: list[str] = field(default_factory=list)
    rum_status: str = HealthStatus.NO_DATA.value
    synthetic_status: str = HealthStatus.NO_DATA.value


@dataclass(slots=True)
class _Verdict:
    status: HealthStatus = HealthStatus.HEALTHY
    reasons: list[str] = field(default_factory=list)

    def flag(self, status: HealthStatus, reason: str) -> None:
        if _RANK[status] > _RANK[self.status]:
            self.status = status
        self.reasons.append(reason)


_VITALS = (
    ("lcp_ms", "LCP", "lcp_p75_ms", True),
    ("inp_ms", "INP", "inp_p75_ms", True),
    ("cls", "CLS", "cls_p75", False),
    ("fcp_ms", "FCP", "fcp_p75_ms", True),
    ("ttfb_ms", "TTFB", "ttfb_p75_ms", True),
)


def _num(value: float, ms: bool) -> str:
    return f"{value:.0f} ms" if ms else f"{value:.3g}"


def rum_health(
    rum: Mapping[str, Any], thresholds: Thresholds, policy: HealthPolicy = DEFAULT_POLICY
) -> tuple[HealthStatus, list[str]]:
    """Status and reasons of a ``RumStats`` JSON dict."""
    views = int(rum.get("sampled_views", 0))
    if views == 0:
        return HealthStatus.NO_DATA, []
    verdict = _Verdict()
    if views < policy.min_views:
        return verdict.status, verdict.reasons
    for field_name, label, limit_name, ms in _VITALS:
        q = rum.get(field_name) or {}
        p75 = q.get("p75")
        limit = float(getattr(thresholds, limit_name))
        if p75 is not None and q.get("count", 0) >= policy.min_views and p75 > limit:
            verdict.flag(HealthStatus.DEGRADED, f"p75 {label} {_num(p75, ms)} > {_num(limit, ms)}")
    error_rate = float(rum.get("error_rate", 0.0))
    limit = thresholds.error_rate
    if error_rate > limit:
        failing = error_rate >= policy.failing_error_factor * limit
        verdict.flag(
            HealthStatus.FAILING if failing else HealthStatus.DEGRADED,
            f"error rate {error_rate:.1%} {'≥' if failing else '>'} "
            f"{(policy.failing_error_factor * limit if failing else limit):.1%} "
            f"({rum.get('views_with_error', 0)}/{views} views with an error)",
        )
    apdex = rum.get("apdex")
    if apdex is not None and apdex < policy.min_apdex:
        verdict.flag(
            HealthStatus.DEGRADED,
            f"Apdex {apdex:.2f} < {policy.min_apdex:.2f} "
            f"(T = {_num(float(rum['apdex_t_ms']), True)})",
        )
    return verdict.status, verdict.reasons


def synthetic_health(
    syn: Mapping[str, Any],
    thresholds: Thresholds,
    policy: HealthPolicy = DEFAULT_POLICY,
    step: str = JOURNEY_LEVEL,
) -> tuple[HealthStatus, list[str]]:
    """Status and reasons of a ``SyntheticStats`` JSON dict."""
    runs = int(syn.get("runs", 0))
    if runs == 0:
        return HealthStatus.NO_DATA, []
    failures = int(syn.get("failures", 0))
    availability = syn.get("availability")
    if availability is None:
        availability = (runs - failures) / runs
    verdict = _Verdict()
    prefix = "" if step == JOURNEY_LEVEL else f"{step}: "
    failed = f"{failures}/{runs} probe runs failed"
    top = _top_reason(syn.get("failed_assertions") or {})
    because = f": {top}" if top else ""
    if failures == runs:
        verdict.flag(HealthStatus.FAILING, f"{prefix}{failed}{because}")
    elif availability <= policy.failing_availability:
        verdict.flag(
            HealthStatus.FAILING,
            f"{prefix}availability {availability:.1%} ≤ {policy.failing_availability:.0%} "
            f"({failed}{because})",
        )
    elif availability < thresholds.min_availability:
        verdict.flag(
            HealthStatus.DEGRADED,
            f"{prefix}availability {availability:.1%} < {thresholds.min_availability:.1%} "
            f"({failed}{because})",
        )
    limit = thresholds.duration_p95_ms
    p95 = (syn.get("duration_ms") or {}).get("p95")
    if limit is not None and p95 is not None and p95 > limit:
        verdict.flag(
            HealthStatus.DEGRADED, f"{prefix}p95 probe duration {p95:.0f} ms > {limit:.0f} ms"
        )
    return verdict.status, verdict.reasons


def _top_reason(reasons: Mapping[str, int]) -> str | None:
    if not reasons:
        return None
    reason, _ = min(reasons.items(), key=lambda item: (-item[1], item[0]))
    more = len(reasons) - 1
    return reason + (f" (+{more} other reason{'s' if more > 1 else ''})" if more else "")


def _unhealthy(status: HealthStatus) -> bool:
    return status in (HealthStatus.DEGRADED, HealthStatus.FAILING)


def assess(
    row: Mapping[str, Any], thresholds: Thresholds, policy: HealthPolicy | None = None
) -> Health:
    """Status, scope and reasons of a ``JourneyAggregate`` JSON dict."""
    policy = policy or DEFAULT_POLICY
    rum_status, rum_reasons = rum_health(row.get("rum") or {}, thresholds, policy)
    syn_status, syn_reasons = synthetic_health(
        row.get("synthetic") or {}, thresholds, policy, str(row.get("step", JOURNEY_LEVEL))
    )
    if rum_status == HealthStatus.NO_DATA and syn_status == HealthStatus.NO_DATA:
        status = HealthStatus.NO_DATA
    else:
        status = max(rum_status, syn_status, key=_RANK.__getitem__)
    rum_bad, syn_bad = _unhealthy(rum_status), _unhealthy(syn_status)
    if rum_bad and syn_bad:
        scope = Scope.CONFIRMED
    elif rum_bad:
        scope = Scope.RUM_ONLY
    elif syn_bad:
        scope = Scope.SYNTHETIC_ONLY
    else:
        scope = Scope.NONE
    return Health(
        status=status.value,
        scope=scope.value,
        reasons=[*syn_reasons, *rum_reasons],
        rum_status=rum_status.value,
        synthetic_status=syn_status.value,
    )
