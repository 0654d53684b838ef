"""Topic contracts: one pydantic module per topic and version."""

from __future__ import annotations

from pydantic import BaseModel

from journeylens.contracts.experience_aggregates_v1 import JourneyAggregate
from journeylens.contracts.experience_alerts_v1 import AlertEvent
from journeylens.contracts.experience_anomalies_v1 import Anomaly
from journeylens.contracts.journeylens_deadletter_v1 import DeadLetter
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.contracts.synthetic_results_v1 import SyntheticResult
from journeylens.settings import Topic

TOPIC_MODELS: dict[Topic, type[BaseModel]] = {
    Topic.RUM_BEACONS: RumEvent,
    Topic.SYNTHETIC_RESULTS: SyntheticResult,
    Topic.AGGREGATES: JourneyAggregate,
    Topic.ANOMALIES: Anomaly,
    Topic.ALERTS: AlertEvent,
    Topic.DEADLETTER: DeadLetter,
}

__all__ = [
    "TOPIC_MODELS",
    "AlertEvent",
    "Anomaly",
    "DeadLetter",
    "JourneyAggregate",
    "RumEvent",
    "SyntheticResult",
]
