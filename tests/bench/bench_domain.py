"""Benchmark of the aggregation hot path.

``python tests/bench/bench_domain.py [N [BATCH]] [--tuned-gc]``

Generates N (default 200k) RUM event dicts shaped as orjson decodes ``rum.beacons.v1`` JSON
(every field present, as ``RumEvent.model_dump(mode="json")`` writes it) over the demo catalog,
then times `pre_aggregate_rum` in batches, the merge into window state and the window close.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from journeylens.contracts.catalog import load_catalog
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.domain.aggregation import (
    RowState,
    finalize_window,
    merge_into,
    pre_aggregate_rum,
    take_window,
)
from journeylens.domain.catalog_view import CatalogView

ROOT = Path(__file__).resolve().parents[2]
COUNTRIES = ["US", "DE", "FR", "GB", "NL", "ES", "IT", "BR", "IN", "JP", "CA", "PL", "SE", "AU"]
BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet", "Opera"]
DEVICES = ["desktop", "mobile", "tablet"]
CONNECTIONS = ["4g", "wifi", "3g", "ethernet", "unknown"]


def generate(n: int, catalog: CatalogView, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    steps = [(j.id, s) for j in catalog.journeys.values() for s in j.steps]
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    template = RumEvent.model_validate(
        {
            "event_id": "e",
            "kind": "page_view",
            "source": "journeylens",
            "timestamp": start,
            "received_at": start,
            "app": "demo-shop",
            "session_id": "s",
            "page_id": "p",
            "url": "https://shop.example/cart",
            "navigation": {"duration_ms": 1000.0},
        }
    ).model_dump(mode="json")
    out = []
    for i in range(n):
        journey, step = rnd.choice(steps)
        ts = start + timedelta(milliseconds=i * 5)  # 200 events/s of event time
        ev = orjson.loads(orjson.dumps(template))
        ev.update(
            event_id=f"e{i}",
            kind="page_view" if rnd.random() < 0.85 else rnd.choice(["web_vital", "error", "step"]),
            timestamp=ts.isoformat().replace("+00:00", "Z"),
            journey=journey,
            step=step,
            session_id=f"s{rnd.randrange(n // 4 + 1)}",
            page_id=f"p{i}",
            sample_rate=rnd.choice([1.0, 1.0, 0.5]),
        )
        ev["vitals"] = {
            "lcp_ms": rnd.lognormvariate(7.5, 0.5),
            "inp_ms": rnd.lognormvariate(4.5, 0.6),
            "cls": rnd.random() * 0.2,
            "fcp_ms": rnd.lognormvariate(7.0, 0.4),
            "ttfb_ms": rnd.lognormvariate(5.5, 0.5),
        }
        ev["navigation"]["duration_ms"] = rnd.lognormvariate(7.6, 0.5)
        ev["context"].update(
            country=COUNTRIES[min(int(rnd.expovariate(0.4)), len(COUNTRIES) - 1)],
            browser=rnd.choice(BROWSERS),
            device_class=rnd.choice(DEVICES),
            connection_type=rnd.choice(CONNECTIONS),
        )
        if rnd.random() < 0.03:
            ev["errors"] = [{"message": "TypeError: x is undefined", "count": 1}]
        if rnd.random() < 0.5:
            ev["dependencies"] = [
                {
                    "host": "cdn.localhost",
                    "provider": "cdn",
                    "requests": 12,
                    "failures": 0,
                    "total_duration_ms": 12 * rnd.lognormvariate(4, 0.5),
                }
            ]
        out.append(ev)
    return out


def main(n: int = 200_000, batch_size: int = 5_000) -> None:
    catalog = CatalogView.from_catalog(load_catalog(ROOT / "infra/catalog/demo-shop.yaml"))
    # Kafka hands the worker bytes: keep them as bytes (not GC-tracked) and decode per batch,
    # as the worker does, so the heap looks like a worker's and not like 200k live dicts.
    payloads = [orjson.dumps(ev) for ev in generate(n, catalog)]
    gc.collect()
    states: dict[Any, RowState] = {}
    decode = aggregate = merge = 0.0
    for i in range(0, n, batch_size):
        t0 = time.process_time()
        events = [orjson.loads(p) for p in payloads[i : i + batch_size]]
        t1 = time.process_time()
        batch = pre_aggregate_rum(events, catalog, 60, None)
        t2 = time.process_time()
        merge_into(states, batch)
        t3 = time.process_time()
        decode += t1 - t0
        aggregate += t2 - t1
        merge += t3 - t2
    t4 = time.process_time()
    rows = []
    for start in sorted({k[2] for k in states}):
        rows.extend(finalize_window(take_window(states, start), catalog))
    close = time.process_time() - t4
    total = decode + aggregate + merge + close
    windows = len({r["window_start"] for r in rows})
    print(f"{n} events, batches of {batch_size}: {len(rows)} rows, {windows} windows (CPU time)")
    print(f"orjson decode      {decode / n * 1e6:6.2f} µs/event")
    print(
        f"pre_aggregate_rum  {aggregate / n * 1e6:6.2f} µs/event  -> {n / aggregate:,.0f} events/s"
    )
    print(f"merge_into         {merge / n * 1e6:6.2f} µs/event")
    print(f"finalize_window    {close / n * 1e6:6.2f} µs/event ({close:.2f} s for all windows)")
    print(f"decode + domain    {total / n * 1e6:6.2f} µs/event -> {n / total:,.0f} events/s")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--tuned-gc" in sys.argv:
        # What a worker can do at start-up: fewer young-generation collections while a batch
        # of decoded dicts is alive (the cyclic GC otherwise costs about as much as the work).
        gc.set_threshold(50_000, 20, 100)
    main(int(args[0]) if args else 200_000, int(args[1]) if len(args) > 1 else 5_000)
