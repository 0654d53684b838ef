"""Fetched records of a worker's handoff topics come out of aiokafka as pipeline Records."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.consumer import fetcher as aiokafka_fetcher
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition
from tests.fixtures.kafka_records import stored_batches

from journeylens.processor.delivery import (
    FETCH_MAX_WAIT_MS,
    BatchApp,
    HandoffRecords,
    HandoffStreams,
)
from journeylens.processor.pipeline import Record

RUM = "rum.beacons.v1"
READ_UNCOMMITTED = 0


MESSAGES: list[tuple[bytes | None, bytes | None]] = [
    (b"checkout", b'{"journey":"checkout"}'),
    (None, b'{"journey":"login"}'),
    (b"checkout", None),
    (b"search", b'{"journey":"search","n":3}'),
]


def _records(
    topic: str, fetch_offset: int, value_deserializer: Any = None, cls: Any = HandoffRecords
) -> tuple[list[Any], Any]:
    records = cls(
        TopicPartition(topic, 3),
        MemoryRecords(stored_batches(MESSAGES, 100, 1_700_000_000_000)),
        [],
        fetch_offset,
        None,
        value_deserializer,
        True,
        READ_UNCOMMITTED,
    )
    return list(records), records


def test_a_handoff_topic_yields_pipeline_records_from_the_fetch_offset() -> None:
    got, records = _records(RUM, 101, HandoffStreams({RUM: "rum"}))
    assert got == [
        Record("rum", 3, 101, b'{"journey":"login"}', None),
        Record("rum", 3, 102, b"", b"checkout"),  # no value: empty bytes, as the loop read it
        Record("rum", 3, 103, b'{"journey":"search","n":3}', b"search"),
    ]
    assert all(type(record) is Record for record in got)
    assert records.next_fetch_offset == 104  # aiokafka's position bookkeeping is unchanged


def test_other_topics_of_a_marked_consumer_get_aiokafkas_records_with_raw_values() -> None:
    got, _ = _records("worker-journey-state-changelog", 100, HandoffStreams({RUM: "rum"}))
    plain, _ = _records("worker-journey-state-changelog", 100, cls=HandoffRecords.__bases__[0])
    assert all(type(record) is ConsumerRecord for record in got)
    assert got == plain
    assert [r.value for r in got] == [m[1] for m in MESSAGES]


def test_an_unmarked_consumer_keeps_its_deserializer_and_consumer_records() -> None:
    got, _ = _records(RUM, 100, lambda value: None if value is None else value.upper())
    assert all(type(record) is ConsumerRecord for record in got)
    assert got[0].value == b'{"JOURNEY":"CHECKOUT"}'
    assert got[2].value is None
    assert [(r.topic, r.partition, r.offset) for r in got] == [(RUM, 3, 100 + i) for i in range(4)]


def _worker_consumer(app: BatchApp) -> Any:
    """The aiokafka consumer the app's consumer thread would start (not connected)."""

    async def create() -> Any:
        return app.consumer._thread._create_worker_consumer(app.transport)

    return asyncio.run(create())


def test_the_worker_consumer_is_marked_with_the_handoff_streams() -> None:
    app = BatchApp("handoff-records-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    app.deliver_in_batches({RUM: "rum", "synthetic.results.v1": "synthetic"}, 10, 1.0)
    consumer = _worker_consumer(app)
    assert type(consumer._value_deserializer) is HandoffStreams
    assert consumer._value_deserializer == {RUM: "rum", "synthetic.results.v1": "synthetic"}
    # from now on aiokafka's fetcher builds its partition records with the handoff class
    assert aiokafka_fetcher.PartitionRecords is HandoffRecords
    # empty partitions are not waited on as long as Faust's 1,500 ms (test_fetch_wait.py)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1_500


def test_without_handoff_topics_the_worker_consumer_is_unmarked() -> None:
    app = BatchApp("handoff-records-plain", broker="kafka://127.0.0.1:1", web_enabled=False)
    assert _worker_consumer(app)._value_deserializer is None


@pytest.mark.parametrize("fetch_offset", [100, 102, 104])
def test_records_before_the_fetch_offset_are_skipped_as_aiokafka_does(fetch_offset: int) -> None:
    got, records = _records(RUM, fetch_offset, HandoffStreams({RUM: "rum"}))
    assert [r.offset for r in got] == list(range(fetch_offset, 104))
    assert records.next_fetch_offset == 104
