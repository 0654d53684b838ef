"""The sink's group commit: when rounds leave, how they overlap on several connections, and
that an answer still waits for Kafka's acknowledgement (fake producers, no broker)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from journeylens.collector.sink import KafkaSink
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.settings import CollectorSettings, KafkaSettings

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples" / "rum.beacons" / "v1"


def _event() -> RumEvent:
    path = sorted(EXAMPLES.glob("*.json"))[0]
    return RumEvent.model_validate(orjson.loads(path.read_bytes()))


class _Builder:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []

    def append(self, *, timestamp: Any, key: bytes, value: bytes) -> object:
        self.messages.append((key, value))
        return object()


class _Producer:
    """Records what it was sent; acknowledges at once, or when released."""

    def __init__(self, name: str, sent: list[tuple[str, int]], *, hold: bool = False) -> None:
        self.name = name
        self.sent = sent
        self.hold = hold
        self.unacked: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def create_batch(self) -> _Builder:
        return _Builder()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send_batch(self, builder: _Builder, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((self.name, len(builder.messages)))
        if self.hold:
            self.unacked.append(future)
        else:
            future.set_result(None)
        return future

    def release(self) -> None:
        for future in self.unacked:
            future.set_result(None)
        self.unacked.clear()


def _sink(producers: list[_Producer], linger_s: float = 0.002) -> KafkaSink:
    settings = CollectorSettings(kafka_connections=len(producers))
    factory = iter(producers)
    return KafkaSink(
        KafkaSettings(), settings, linger_s=linger_s, producer_factory=lambda: next(factory)
    )


async def test_a_lone_beacon_leaves_without_waiting_out_the_linger() -> None:
    sent: list[tuple[str, int]] = []
    sink = _sink([_Producer("a", sent)], linger_s=30.0)
    await sink.start()
    try:
        await asyncio.wait_for(sink.publish([_event()], ()), timeout=5.0)
    finally:
        await sink.stop()
    assert sent == [("a", 1)]
    assert sink.in_flight == 0


async def test_the_next_round_leaves_on_the_free_connection_and_answers_wait_for_acks() -> None:
    sent: list[tuple[str, int]] = []
    first, second = _Producer("first", sent, hold=True), _Producer("second", sent, hold=True)
    sink = _sink([first, second])
    await sink.start()
    try:
        one = asyncio.create_task(sink.publish([_event()], ()))
        while not first.unacked and not second.unacked:
            await asyncio.sleep(0.001)
        two = asyncio.create_task(sink.publish([_event(), _event()], ()))
        while len(sent) < 2:
            await asyncio.sleep(0.001)
        assert sorted(n for _, n in sent) == [1, 2]
        assert {name for name, _ in sent} == {"first", "second"}  # one round on each
        await asyncio.sleep(0.05)
        assert not one.done() and not two.done()  # no answer before Kafka acknowledged
        by_name = {"first": first, "second": second}
        holds_one = by_name[next(name for name, n in sent if n == 1)]
        holds_two = by_name[next(name for name, n in sent if n == 2)]
        holds_two.release()
        await asyncio.wait_for(two, timeout=5.0)
        assert not one.done()  # its round is still unacknowledged
        holds_one.release()
        await asyncio.wait_for(one, timeout=5.0)
    finally:
        first.release()
        second.release()
        await sink.stop()
    assert sink.in_flight == 0


async def test_with_one_connection_the_next_round_waits_for_the_last() -> None:
    sent: list[tuple[str, int]] = []
    only = _Producer("only", sent, hold=True)
    sink = _sink([only])
    await sink.start()
    try:
        one = asyncio.create_task(sink.publish([_event()], ()))
        while not only.unacked:
            await asyncio.sleep(0.001)
        two = asyncio.create_task(sink.publish([_event()], ()))
        await asyncio.sleep(0.05)
        assert sent == [("only", 1)]  # the second beacon waits in the open batch
        only.release()
        await asyncio.wait_for(one, timeout=5.0)
        while not only.unacked:
            await asyncio.sleep(0.001)
        assert sent == [("only", 1), ("only", 1)]
        only.release()
        await asyncio.wait_for(two, timeout=5.0)
    finally:
        only.release()
        await sink.stop()


async def test_a_request_that_goes_away_does_not_cancel_the_batch_for_the_others() -> None:
    sent: list[tuple[str, int]] = []
    producer = _Producer("a", sent, hold=True)
    sink = _sink([producer], linger_s=0.05)
    await sink.start()
    try:
        gone = asyncio.create_task(sink.publish([_event()], ()))
        stays = asyncio.create_task(sink.publish([_event()], ()))
        while not producer.unacked:
            await asyncio.sleep(0.001)
        assert sent == [("a", 2)]  # both in one batch
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        producer.release()
        await asyncio.wait_for(stays, timeout=5.0)
    finally:
        producer.release()
        await sink.stop()
    assert sink.in_flight == 0
