"""AlertEvent (experience.alerts.v1 CloudEvent) → Prometheus Alertmanager webhook payload.

The payload is the one Alertmanager POSTs to a ``webhook_config`` receiver (version "4"), so any
tool that consumes Alertmanager webhooks consumes JourneyLens incidents unchanged. Pure: the
worker does the POST.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from journeylens.contracts.experience_alerts_v1 import AlertEvent, AlertStatus

ZERO_TIME = "0001-01-01T00:00:00Z"
"""What Alertmanager sends as endsAt of an alert that is still firing."""

ALERT_NAME = "JourneyDegraded"


def _rfc3339(value: str | None) -> str:
    if not value:
        return ZERO_TIME
    return value.replace("+00:00", "Z")


def alertmanager_payload(
    event: Mapping[str, Any],
    *,
    receiver: str = "journeylens",
    external_url: str = "",
    generator_url: str | None = None,
) -> dict[str, Any]:
    """Convert one AlertEvent dict into an Alertmanager webhook body (JSON-able dict)."""
    alert = AlertEvent.model_validate(event)
    data = alert.data
    as_json = alert.model_dump(mode="json")["data"]
    labels = {
        "alertname": ALERT_NAME,
        # scope may change during an incident: it is an annotation, not part of the identity
        **{k: v for k, v in sorted(data.labels.items()) if k != "scope"},
        "journey": data.journey,
        "severity": data.severity.value,
        "incident_id": data.incident_id,
    }
    impact = data.impact
    annotations: dict[str, str] = {
        "summary": data.title,
        "description": data.summary,
        "scope": data.scope.value,
        "sessions_affected": str(impact.sessions_affected),
        "revenue_at_risk": f"{impact.revenue_at_risk:.2f} {impact.currency}",
    }
    if impact.conversion_drop is not None:
        annotations["conversion_drop"] = f"{impact.conversion_drop:.4f}"
    evidence = data.evidence
    optional = {
        "suspected_step": evidence.suspected_step,
        "suspected_dependency": evidence.suspected_dependency,
        "segment": (
            f"{evidence.segment_dimension}={evidence.segment_value}"
            if evidence.segment_dimension
            else None
        ),
        "failing_locations": ",".join(evidence.failing_locations) or None,
    }
    annotations.update({k: v for k, v in optional.items() if v})
    status = "resolved" if data.status == AlertStatus.RESOLVED else "firing"
    group_labels = {"journey": data.journey}
    base_url = external_url.rstrip("/")
    link = generator_url or (f"{base_url}/journeys/{data.journey}" if base_url else "")
    return {
        "version": "4",
        "groupKey": f'{{}}:{{journey="{data.journey}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": _rfc3339(as_json["started_at"]),
                "endsAt": _rfc3339(as_json["resolved_at"]) if status == "resolved" else ZERO_TIME,
                "generatorURL": link,
                "fingerprint": data.fingerprint,
            }
        ],
    }
