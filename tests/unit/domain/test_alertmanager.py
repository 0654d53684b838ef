from __future__ import annotations

import json
from typing import Any

from journeylens.domain.alertmanager import ZERO_TIME, alertmanager_payload
from journeylens.domain.detector import Detector

from .detection_factories import T0, demo_catalog, starts, window

BROKEN = {"payment": {"lcp": 5200.0, "error_rate": 0.4, "failures": 1}}


def _incident_events() -> list[dict[str, Any]]:
    detector = Detector(demo_catalog())
    pattern: list[dict[str, Any]] = [{}] * 30 + [BROKEN] * 4 + [{}] * 4
    events: list[dict[str, Any]] = []
    for start, overrides in zip(starts(T0, len(pattern)), pattern, strict=True):
        events += detector.observe(window(start, step_overrides=overrides)).alerts
    return events


def test_firing_event_becomes_an_alertmanager_v4_webhook() -> None:
    firing = _incident_events()[0]
    payload = alertmanager_payload(
        firing, receiver="oncall", external_url="http://journeylens.local:8700/"
    )
    assert set(payload) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "oncall"
    assert payload["groupKey"] == '{}:{journey="checkout"}'
    assert payload["groupLabels"] == {"journey": "checkout"}
    [alert] = payload["alerts"]
    assert set(alert) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert alert["labels"]["alertname"] == "JourneyDegraded"
    assert alert["labels"]["severity"] == firing["data"]["severity"]
    assert alert["labels"]["journey"] == "checkout"
    assert alert["startsAt"] == "2025-03-03T00:32:00Z"
    assert alert["endsAt"] == ZERO_TIME
    assert alert["fingerprint"] == firing["data"]["fingerprint"]
    assert alert["generatorURL"] == "http://journeylens.local:8700/journeys/checkout"
    assert alert["annotations"]["summary"] == firing["data"]["title"]
    assert alert["annotations"]["suspected_step"] == "payment"
    assert all(isinstance(v, str) for v in alert["labels"].values())
    assert all(isinstance(v, str) for v in alert["annotations"].values())
    assert payload["commonLabels"] == alert["labels"]
    json.dumps(payload)


def test_resolved_event_has_an_end_time() -> None:
    resolved = _incident_events()[-1]
    assert resolved["type"] == "io.journeylens.alert.resolved"
    payload = alertmanager_payload(resolved)
    [alert] = payload["alerts"]
    assert payload["status"] == alert["status"] == "resolved"
    assert alert["endsAt"] == "2025-03-03T00:37:00Z"
    assert alert["generatorURL"] == ""


def test_pure_and_deterministic() -> None:
    event = _incident_events()[0]
    snapshot = json.dumps(event, sort_keys=True)
    assert alertmanager_payload(event) == alertmanager_payload(event)
    assert json.dumps(event, sort_keys=True) == snapshot
