"""Probe results to Kafka: ``synthetic.results.v1``, keyed by journey id, acks=all, JSON.

The key is the journey id as UTF-8, the same key scheme as ``rum.beacons.v1`` so both topics
are co-partitioned by journey.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer

from journeylens.contracts.synthetic_results_v1 import SyntheticResult
from journeylens.settings import KafkaSettings, Topic
from journeylens.stack.topics import admin_client_options

log = logging.getLogger(__name__)


class ResultSink(Protocol):
    """Where the scheduler hands each result."""

    async def publish(self, result: SyntheticResult) -> None: ...


def result_key(result: SyntheticResult) -> bytes:
    return result.journey.encode("utf-8")


def result_value(result: SyntheticResult) -> bytes:
    return orjson.dumps(result.model_dump(mode="json"))


class KafkaResultPublisher:
    """Produces results to the physical ``synthetic.results.v1`` topic."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.topic = kafka.physical(Topic.SYNTHETIC_RESULTS)
        options: dict[str, Any] = admin_client_options(kafka)
        options["client_id"] = f"{kafka.client_id}-probe"
        self._producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=5
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, result: SyntheticResult) -> None:
        await self._producer.send_and_wait(
            self.topic, value=result_value(result), key=result_key(result)
        )
        log.debug("published %s run %s to %s", result.journey, result.run_id, self.topic)

    async def __aenter__(self) -> KafkaResultPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
