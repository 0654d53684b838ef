"""The worker's processing of one batch, independent of Faust: decode → domain → outputs.

State is kept per journey (all events of a journey share one partition of both input topics):
its open windows, its window closer (watermark), the detector's baselines and incidents, and
the last input offset it has counted per topic. A replayed record (offset not above that
mark) is not counted again, so restoring the state from its changelog and re-reading the
uncommitted tail of the topics yields the same aggregates as an uninterrupted run.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from journeylens.contracts.catalog import Catalog
from journeylens.contracts.common import UNMAPPED
from journeylens.domain.aggregation import (
    BatchStates,
    Key,
    RowState,
    finalize_window,
    merge_into,
    pre_aggregate_rum,
    pre_aggregate_synthetic,
    take_window,
)
from journeylens.domain.catalog_view import CatalogView
from journeylens.domain.clock import Clock
from journeylens.domain.detector import Detector
from journeylens.domain.windows import WindowCloser

RUM = "rum"
SYNTHETIC = "synthetic"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Record:
    """One input message: which stream, where it sits in its partition, and its bytes."""

    stream: str  # RUM or SYNTHETIC
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True)
class PipelineConfig:
    window_s: int = 60
    grace_s: int = 30
    top_n: int = 8
    idle_timeout_s: float = 120.0
    stream_lag_s: int = 300


@dataclass
class JourneyState:
    windows: dict[Key, RowState] = field(default_factory=dict)
    closer: WindowCloser | None = None
    offsets: dict[str, int] = field(default_factory=dict)
    detector: Any = None
    partition: int = -1
    stream_marks: dict[str, int] = field(default_factory=dict)
    """Largest event time (epoch s) seen per input stream of this journey."""

    def encode(self) -> bytes:
        closer = self.closer.to_state() if self.closer is not None else None
        doc = {
            "v": STATE_VERSION,
            "windows": [[*key, row.to_state()] for key, row in self.windows.items()],
            "closer": closer,
            "offsets": self.offsets,
            "detector": self.detector,
            "partition": self.partition,
            "stream_marks": self.stream_marks,
        }
        return zlib.compress(orjson.dumps(doc), 3)

    @classmethod
    def decode(cls, blob: bytes, clock: Clock, idle_timeout_s: float) -> JourneyState:
        doc = orjson.loads(zlib.decompress(blob))
        windows: dict[Key, RowState] = {
            (w[0], w[1], int(w[2]), w[3], w[4]): RowState.from_state(w[5]) for w in doc["windows"]
        }
        closer = (
            WindowCloser.from_state(doc["closer"], clock=clock, idle_timeout_s=idle_timeout_s)
            if doc.get("closer")
            else None
        )
        offsets = dict(doc.get("offsets") or {})
        return cls(
            windows,
            closer,
            offsets,
            doc.get("detector"),
            int(doc.get("partition", -1)),
            {k: int(v) for k, v in (doc.get("stream_marks") or {}).items()},
        )


@dataclass
class BatchOutput:
    rum_events: list[dict[str, Any]] = field(default_factory=list)
    synthetic_results: list[dict[str, Any]] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[tuple[Record, str]] = field(default_factory=list)
    states: dict[str, tuple[int, JourneyState]] = field(default_factory=dict)
    """journey → (partition, new state) for every journey whose state changed."""
    replayed: int = 0
    late_events: int = 0


class ExperiencePipeline:
    """Turns batches of input records into raw rows, window aggregates, anomalies and alerts."""

    def __init__(self, catalog: Catalog, config: PipelineConfig, clock: Clock) -> None:
        self.catalog = catalog
        self.view = CatalogView.from_catalog(catalog)
        self.config = config
        self.clock = clock
        self.detector = Detector(catalog)

    def new_closer(self) -> WindowCloser:
        return WindowCloser(
            self.config.window_s,
            self.config.grace_s,
            clock=self.clock,
            idle_timeout_s=self.config.idle_timeout_s,
        )

    def decode_state(self, blob: bytes | None) -> JourneyState:
        if not blob:
            return JourneyState(closer=self.new_closer())
        state = JourneyState.decode(blob, self.clock, self.config.idle_timeout_s)
        if state.closer is None:
            state.closer = self.new_closer()
        return state

    def process(self, records: Sequence[Record], states: Mapping[str, JourneyState]) -> BatchOutput:
        """Process one batch. ``states`` holds the current state of the batch's journeys."""
        out = BatchOutput()
        per_journey: dict[str, dict[str, list[tuple[Record, dict[str, Any]]]]] = defaultdict(
            lambda: {RUM: [], SYNTHETIC: []}
        )
        for record in records:
            message = self._decode(record, out)
            if message is None:
                continue
            (out.rum_events if record.stream == RUM else out.synthetic_results).append(message)
            journey = message.get("journey") or UNMAPPED
            if journey != UNMAPPED and self.view.journey(journey) is not None:
                per_journey[journey][record.stream].append((record, message))
        for journey, streams in per_journey.items():
            state = states.get(journey) or self.decode_state(None)
            partition = self._aggregate(journey, streams, state, out)
            if partition >= 0:
                state.partition = partition
            if state.partition >= 0:
                out.states[journey] = (state.partition, state)
        return out

    def close_idle(self, states: Mapping[str, tuple[int, JourneyState]]) -> BatchOutput:
        """Close windows whose watermark moved by the clock alone (no traffic)."""
        out = BatchOutput()
        for journey, (partition, state) in states.items():
            if self._close_windows(journey, state, out):
                out.states[journey] = (partition, state)
        return out

    # ------------------------------------------------------------------------------------

    def _decode(self, record: Record, out: BatchOutput) -> dict[str, Any] | None:
        try:
            message = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            out.dead_letters.append((record, f"not JSON: {exc}"))
            return None
        if not isinstance(message, dict):
            out.dead_letters.append((record, "a message must be a JSON object"))
            return None
        required = ("event_id", "timestamp") if record.stream == RUM else ("run_id", "started_at")
        missing = [name for name in required if name not in message]
        if missing:
            out.dead_letters.append((record, f"missing fields {missing}"))
            return None
        return message

    def _aggregate(
        self,
        journey: str,
        streams: Mapping[str, list[tuple[Record, dict[str, Any]]]],
        state: JourneyState,
        out: BatchOutput,
    ) -> int:
        closer = state.closer
        assert closer is not None
        partition = -1
        batches: list[tuple[str, BatchStates]] = []
        for stream, items in streams.items():
            mark = state.offsets.get(stream, -1)
            fresh = [(r, m) for r, m in items if r.offset > mark]
            out.replayed += len(items) - len(fresh)
            if not fresh:
                continue
            partition = fresh[-1][0].partition
            state.offsets[stream] = max(r.offset for r, _ in fresh)
            messages = [m for _, m in fresh]
            aggregate = pre_aggregate_rum if stream == RUM else pre_aggregate_synthetic
            batches.append(
                (
                    stream,
                    aggregate(
                        messages,
                        self.view,
                        self.config.window_s,
                        closer.watermark,
                        grace_s=self.config.grace_s,
                    ),
                ),
            )
        for stream, batch in batches:
            merge_into(state.windows, batch)
            if batch.max_event_ts is not None:
                previous = state.stream_marks.get(stream, batch.max_event_ts)
                state.stream_marks[stream] = max(previous, batch.max_event_ts)
            closer.observe(None, batch.windows)
            closer.count_late(batch.late_events)
            out.late_events += batch.late_events
        closer.observe(self._combined_mark(state.stream_marks), set())
        self._close_windows(journey, state, out)
        return partition

    def _combined_mark(self, marks: Mapping[str, int]) -> int | None:
        """Event time both streams have reached: the slower stream holds the watermark back,
        unless it lags by more than ``stream_lag_s`` (a sparse or silent stream, e.g. a journey
        probed every 5 minutes), so one topic read ahead of the other makes nothing late."""
        if not marks:
            return None
        newest = max(marks.values())
        current = [m for m in marks.values() if newest - m <= self.config.stream_lag_s]
        return min(current)

    def _close_windows(self, journey: str, state: JourneyState, out: BatchOutput) -> bool:
        assert state.closer is not None
        closed = state.closer.pop_closed()
        if not closed:
            return False
        if state.detector is not None:
            self.detector.load_state(journey, state.detector)
        for start in closed:
            rows = finalize_window(
                take_window(state.windows, start),
                self.view,
                top_n=self.config.top_n,
                window_s=self.config.window_s,
            )
            if not rows:
                continue
            out.aggregates.extend(rows)
            detection = self.detector.observe(rows)
            out.anomalies.extend(detection.anomalies)
            out.alerts.extend(detection.alerts)
        state.detector = self.detector.state_for(journey)
        return True
