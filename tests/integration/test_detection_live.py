"""The live detection run: a payment outage in real time through the collector, Kafka and the
worker, on short windows; the alert is read back from ``experience.alerts.v1``.

Real components only: the session's Kafka and ClickHouse, ``journeylens collector`` and
``journeylens worker`` processes; simulated users post beacons to the collector's HTTP
endpoints and the model's probe results go onto ``synthetic.results.v1``. About two and a half
minutes: 6 s windows, 12 of warm-up (the baselines learn from the first 10), 5 with the fault.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from journeylens.settings import KafkaSettings
from journeylens.simulation.live_bench import LiveConfig, prepare_services, run_live
from journeylens.storage.client import ClickHouseTarget

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CONFIG = LiveConfig(
    scenario="payment-outage",
    window_s=6,
    grace_s=2,
    warmup_windows=12,
    fault_windows=5,
    recovery_windows=0,
    tail_windows=2,
    sessions_per_minute=1500.0,
    seed=5,
)


def _progress(line: str) -> None:
    sys.stderr.write(f"[live detection] {line}\n")


def test_payment_outage_in_real_time_is_one_confirmed_alert_at_payment(
    kafka_bootstrap: str,
    clickhouse_database_factory: Callable[[str], ClickHouseTarget],
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"live-{uuid.uuid4().hex[:8]}."
    )
    target = clickhouse_database_factory("detection_live")
    services = prepare_services(kafka, target.dsn(), _progress)

    result = run_live(REPO / "infra/catalog/demo-shop.yaml", CONFIG, services, tmp_path, _progress)
    _progress(str(result.to_json()))

    # no alert while the traffic was steady
    assert result.false_alerts == []
    # the outage was alerted, on the right journey, while it lasted
    s = result.scenario
    assert s.detected and s.detect_windows is not None
    assert s.detect_windows <= CONFIG.fault_windows
    assert result.detect_s is not None and 0 < result.detect_s < 60
    # classified: users and probes agree, at the payment step, on the payment provider
    assert (s.got.scope, s.got.step, s.got.dependency, s.got.segment) == (
        "confirmed",
        "payment",
        "payment",
        None,
    )
    # one incident, never reopened; no other journey alerted
    assert s.incidents == 1 and s.reopened == 0
    assert s.other_journeys == {}
    # the worker's other sink has the alert events too; the traffic really went through
    assert result.stored_alert_events >= 1
    assert result.beacon_requests > 1000
    assert result.rejected_requests <= result.beacon_requests // 100
    assert result.probe_results > 0
