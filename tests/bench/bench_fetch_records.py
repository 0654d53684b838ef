"""CPU cost per record of turning a fetched partition into the worker's records.

``python tests/bench/bench_fetch_records.py [N [ROUNDS]]``

Builds record batches of ``N`` bench messages (the messages of ``journeylens bench worker``) as
the broker stores them, then iterates them, alternating in one process:

- aiokafka's ``PartitionRecords`` (a ``ConsumerRecord`` per record), each then copied into a
  pipeline ``Record`` (what the worker's fetch loop did);
- ``HandoffRecords`` marked by ``HandoffStreams`` (a ``Record`` per record, as the worker's
  consumer now yields them).

Prints µs per record of each and their ratio (same run, interleaved rounds, CRCs checked).
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from journeylens.processor.bench import make_events
from journeylens.processor.delivery import HandoffRecords, HandoffStreams
from journeylens.processor.pipeline import Record

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fixtures
from tests.fixtures.kafka_records import stored_batches  # noqa: E402

TOPIC = "rum.beacons.v1"
AIOKAFKA_RECORDS = HandoffRecords.__bases__[0]


def main(n: int = 20_000, rounds: int = 20) -> None:
    raw = stored_batches([(b"j1", value) for value in make_events(n, 10, 4, 5)[:n]])
    tp = TopicPartition(TOPIC, 0)
    streams = HandoffStreams({TOPIC: "rum"})

    def before() -> list[Record]:
        records = AIOKAFKA_RECORDS(tp, MemoryRecords(raw), [], 0, None, None, True, 0)
        return [Record("rum", 0, r.offset, r.value or b"", r.key) for r in records]

    def now() -> list[Record]:
        return list(HandoffRecords(tp, MemoryRecords(raw), [], 0, None, streams, True, 0))

    assert before() == now()
    gc.disable()
    spent = {"before": 0.0, "now": 0.0}
    for i in range(rounds):
        for name in ("before", "now") if i % 2 else ("now", "before"):
            started = time.process_time()
            (before if name == "before" else now)()
            spent[name] += time.process_time() - started
    per = {name: s / (rounds * n) * 1e6 for name, s in spent.items()}
    print(f"{n:,} records x {rounds} rounds")
    print(f"ConsumerRecord, then Record   {per['before']:.2f} µs/record")
    print(f"HandoffRecords (Record)       {per['now']:.2f} µs/record")
    print(f"ratio                         {per['now'] / per['before']:.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
