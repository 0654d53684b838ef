"""Micro-benchmark of the collector's per-beacon CPU path (our own beacon JSON).

``python tests/bench/bench_collector_parse.py [REQUESTS [ITEMS]]``

Builds REQUESTS (default 500) bodies of ITEMS (default 20) page views with
``collector.bench.beacon_body`` (the body ``journeylens bench collector`` posts), then times,
per beacon (one page_view item): the parser, enrichment (request context + enrich), the Kafka
value encoding, and an append to an aiokafka batch builder (what the sink does per message).
Each phase runs 5 times; the medians are printed. Not collected by pytest (no ``test_``
prefix), like ``bench_domain.py``.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from journeylens.collector.bench import beacon_body
from journeylens.collector.enrich import Enricher
from journeylens.collector.formats import journeylens as jl
from journeylens.collector.formats.base import RequestMeta
from journeylens.collector.sink import MAX_BATCH_BYTES, encode
from journeylens.contracts.catalog import load_catalog
from journeylens.domain.catalog_match import CatalogMatcher
from journeylens.settings import CollectorSettings

ROOT = Path(__file__).resolve().parents[2]
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
RUNS = 5
LZ4 = DefaultRecordBatch.CODEC_LZ4


def _meta() -> RequestMeta:
    return RequestMeta(
        app="demo-shop",
        received_at=datetime.now(UTC),
        user_agent=UA,
        content_type="text/plain;charset=UTF-8",
    )


def main(requests: int = 500, items: int = 20) -> None:
    rng = random.Random(7)
    bodies = [beacon_body(rng, items) for _ in range(requests)]
    enricher = Enricher(
        CollectorSettings(), CatalogMatcher(load_catalog(ROOT / "infra/catalog/demo-shop.yaml"))
    )
    beacons = requests * items
    clock = time.perf_counter
    builder = BatchBuilder(MAX_BATCH_BYTES, LZ4)
    metas = [_meta() for _ in bodies]
    timings: dict[str, list[float]] = {
        "parse": [],
        "enrich": [],
        "encode": [],
        "append+lz4": [],
    }
    for _ in range(RUNS):
        spent = dict.fromkeys(timings, 0.0)
        count = 0
        for body, meta in zip(bodies, metas, strict=True):
            # One request at a time, nothing kept: the collector's allocation pattern.
            t0 = clock()
            events = jl.parse(body, meta).events
            t1 = clock()
            ctx = enricher.context(user_agent=UA, probe_header=None, country_header="DE")
            enricher.enrich(events, ctx)
            t2 = clock()
            values = [(event.journey.encode(), encode(event)) for event in events]
            t3 = clock()
            for key, value in values:
                if builder.append(timestamp=None, key=key, value=value) is None:
                    builder._build()  # closes and lz4-compresses, as send_batch does
                    builder = BatchBuilder(MAX_BATCH_BYTES, LZ4)
                    builder.append(timestamp=None, key=key, value=value)
            t4 = clock()
            spent["parse"] += t1 - t0
            spent["enrich"] += t2 - t1
            spent["encode"] += t3 - t2
            spent["append+lz4"] += t4 - t3
            count += len(events)
        assert count == beacons, (count, beacons)
        for phase, seconds in spent.items():
            timings[phase].append(seconds)

    print(f"{requests} requests x {items} page views, median of {RUNS} runs, µs per beacon:")
    total = 0.0
    for phase, seconds in timings.items():
        us = statistics.median(seconds) / beacons * 1e6
        total += us
        print(f"  {phase:<10} {us:7.2f}")
    print(f"  {'total':<10} {total:7.2f}  ({1e6 / total:,.0f} beacons per CPU-second)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
