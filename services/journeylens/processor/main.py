"""Build and run a worker from settings (the CLI's entry point calls this)."""

from __future__ import annotations

import gc
import logging
import sys

import faust

from journeylens.contracts.catalog import Catalog
from journeylens.processor.agents.experience import ExperienceAgent
from journeylens.processor.app import build_app
from journeylens.processor.clock import SystemClock
from journeylens.processor.outputs import ClickHouseOutputs
from journeylens.processor.pipeline import ExperiencePipeline, PipelineConfig
from journeylens.settings import KafkaSettings, WorkerSettings
from journeylens.storage.client import make_client


def build_worker(
    worker: WorkerSettings, kafka: KafkaSettings, catalog: Catalog, clickhouse_dsn: str
) -> tuple[faust.App, ExperienceAgent]:
    config = PipelineConfig(
        window_s=worker.window_s,
        grace_s=worker.grace_s,
        top_n=worker.segment_top_n,
        idle_timeout_s=worker.idle_timeout_s,
    )
    pipeline = ExperiencePipeline(catalog, config, SystemClock())
    worker_app = build_app(worker, kafka)
    agent = ExperienceAgent(
        worker_app,
        pipeline,
        ClickHouseOutputs(make_client(clickhouse_dsn)),
        batch_max=worker.batch_max_events,
        batch_within_s=worker.sink_flush_s,
        batch_max_bytes=worker.batch_max_bytes,
        webhook_urls=worker.webhook_urls,
    )
    agent.register()
    return worker_app.app, agent


def run_worker(app: faust.App, loglevel: str = "info") -> None:
    logging.basicConfig(level=loglevel.upper())
    # Batches allocate many short-lived objects; a lazier collector halves the GC cost.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # A batch is processed in a thread while the event loop stores the previous one: with the
    # default 5 ms switch interval every loop step of the store waits up to 5 ms for the GIL.
    sys.setswitchinterval(0.0005)
    worker = faust.Worker(app, loglevel=loglevel)
    # Faust's terminal spinner sets the root logger to DEBUG so that every log record spins
    # it: every debug message of aiokafka and Faust (one per message sent) became a LogRecord.
    worker.spinner = None
    worker.execute_from_commandline()
