"""CPU cost of the worker's batch pipeline, stage by stage, without Kafka or ClickHouse.

``python tests/bench/bench_pipeline.py [N [BATCH]]``

Feeds the events of ``journeylens bench worker`` (same generator, same catalog: 10 journeys ×
4 steps, 5 minutes) to `ExperiencePipeline.process` in batches as the worker does, keeps the
journey states as the worker does (encoded after every batch, decoded only on a cache miss),
and prints the process CPU time per event of each stage.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import defaultdict

import orjson

from journeylens.contracts.catalog import Catalog
from journeylens.domain.clock import FakeClock
from journeylens.processor.bench import BASE, bench_catalog, make_events
from journeylens.processor.pipeline import ExperiencePipeline, JourneyState, PipelineConfig, Record


def main(n: int = 100_000, batch_size: int = 20_000) -> None:
    catalog = Catalog.model_validate(bench_catalog(10, 4))
    pipeline = ExperiencePipeline(catalog, PipelineConfig(), FakeClock(BASE + 3600))
    values = make_events(n, 10, 4, 5)
    # keyed by journey, as the collector produces them (and the worker reads them)
    records = [
        Record("rum", 0, i, v, orjson.loads(v)["journey"].encode()) for i, v in enumerate(values)
    ]
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)  # as the worker does (processor/main.py)
    states: dict[str, JourneyState] = {}
    cost: dict[str, float] = defaultdict(float)
    rows = state_bytes = 0
    for i in range(0, len(records), batch_size):
        gc.disable()  # as the worker does while it processes a batch (agents/experience.py)
        t0 = time.process_time()
        out = pipeline.process(records[i : i + batch_size], states)
        t1 = time.process_time()
        blobs = {j: s.encode() for j, (_, s) in out.states.items()}
        t2 = time.process_time()
        gc.enable()
        published = [orjson.dumps(a) for a in out.aggregates]
        t3 = time.process_time()
        cost["process"] += t1 - t0
        cost["encode state"] += t2 - t1
        cost["aggregates json"] += t3 - t2
        rows += len(out.aggregates)
        state_bytes += sum(len(b) for b in blobs.values())
        for journey, (_, state) in out.states.items():
            states[journey] = state
        del published
    total = sum(cost.values())
    print(f"{len(records):,} events in batches of {batch_size:,}: {rows:,} aggregate rows, "
          f"{state_bytes / 1e6:.1f} MB of state written")  # fmt: skip
    for stage, seconds in cost.items():
        print(f"{stage:<16} {seconds / len(records) * 1e6:7.2f} µs/event")
    print(f"{'total':<16} {total / len(records) * 1e6:7.2f} µs/event -> "
          f"{len(records) / total:,.0f} events/s per core")  # fmt: skip


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
