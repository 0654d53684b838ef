"""The worker's processing of one batch, independent of Faust: decode → domain → outputs.

State is kept per journey (all events of a journey share one partition of both input topics):
its open windows, its window closer (watermark), the detector's baselines and incidents, and
the last input offset it has counted per topic. A replayed record (offset not above that
mark) is not counted again, so restoring the state from its changelog and re-reading the
uncommitted tail of the topics yields the same aggregates as an uninterrupted run.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

import cramjam
import lz4.frame
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
    pre_aggregate_rum_raw,
    pre_aggregate_synthetic,
    rum_problem,
    synthetic_problem,
    take_window,
)
from journeylens.domain.catalog_view import CatalogView
from journeylens.domain.clock import Clock
from journeylens.domain.detector import Detector
from journeylens.domain.windows import WindowCloser

RUM = "rum"
SYNTHETIC = "synthetic"
STATE_VERSION = 1
DECODE_CHUNK = 50_000
"""Records aggregated at once within a batch: a bound (a default batch of 64,000 is aggregated
as 50,000 + 14,000: the same CPU per event as one chunk, within noise) for a batch of records
decoded in Python (keyed RUM records are read raw by the compiled scan, and
other keyed records decoded a journey at a time anyway). A decoded RUM message takes ~3.5 kB of
Python objects against ~0.8 kB as bytes; smaller chunks cost more CPU per event (every chunk
merges into every key it touches)."""
_REQUIRED = {RUM: ("event_id", "timestamp"), SYNTHETIC: ("run_id", "started_at")}
"""Fields a message of each stream must have; one without them is dead-lettered."""
STATE_LZ4_LEVEL = 1
"""The changelogged state is an LZ4 frame at level 1: ~3.5x faster than zlib level 1 for a
similar size (a journey state is mostly sketch buckets and session ids). Blobs written
before, zlib streams, still decode."""


def _compress_state(raw: bytes) -> bytes:
    """An LZ4 frame (independent blocks, no checksum) by python-lz4, which releases the GIL
    while it compresses, so the event loop and the fetch go on meanwhile (cramjam's holds it:
    ~4 % of a worker's CPU per event, all under the GIL), and is ~10 % faster on states."""
    blob: bytes = lz4.frame.compress(
        raw, compression_level=STATE_LZ4_LEVEL, content_checksum=False, block_linked=False
    )
    return blob


_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


class Record(NamedTuple):
    """One input message: which stream, where it sits in its partition, its bytes and key."""

    stream: str  # RUM or SYNTHETIC
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    """The Kafka key: the journey id, by both input topics' contracts."""


_OFFSET = attrgetter("offset")


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
            # not canonical: sets and sketch buckets in their own order (the same state)
            "windows": [[*key, row.to_state(False)] for key, row in self.windows.items()],
            "closer": closer,
            "offsets": self.offsets,
            "detector": self.detector,
            "partition": self.partition,
            "stream_marks": self.stream_marks,
        }
        return _compress_state(orjson.dumps(doc))

    @classmethod
    def decode(cls, blob: bytes, clock: Clock, idle_timeout_s: float) -> JourneyState:
        doc = orjson.loads(_decompress(blob))
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


def _decompress(blob: bytes) -> bytes:
    if blob[:4] == _LZ4_FRAME_MAGIC:
        return bytes(cramjam.lz4.decompress(blob))
    return zlib.decompress(blob)  # a state changelogged by an earlier version


@dataclass(slots=True)
class _JourneyBatch:
    """One journey's records of a batch, per stream, in arrival order."""

    streams: dict[str, tuple[list[Record], list[dict[str, Any]]]] = field(default_factory=dict)
    raw_rum: list[Record] = field(default_factory=list)
    """RUM records keyed by this journey, not decoded: `pre_aggregate_rum_raw` reads them."""

    def add(self, record: Record, message: dict[str, Any]) -> None:
        lists = self.streams.get(record.stream)
        if lists is None:
            lists = self.streams[record.stream] = ([], [])
        lists[0].append(record)
        lists[1].append(message)


@dataclass
class BatchOutput:
    rum_messages: list[bytes] = field(default_factory=list)
    """The RUM messages as they arrived (valid JSON objects): stored raw, parsed by ClickHouse."""
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
        self._needles = {
            journey.encode(): (journey, b'"journey":"' + journey.encode() + b'"')
            for journey in self.view.journeys
            if journey != UNMAPPED and '"' not in journey and "\\" not in journey
        }
        """Kafka key → (journey, the bytes a message of that journey holds)."""

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

    def process(
        self,
        records: Sequence[Record],
        states: Mapping[str, JourneyState],
        *,
        chunk: int = DECODE_CHUNK,
    ) -> BatchOutput:
        """Process one batch. ``states`` holds the current state of the batch's journeys
        (``states.get(journey)``; a journey it lacks starts from an empty state).

        The records are decoded and aggregated ``chunk`` at a time, in order, each chunk
        starting from the states the previous one left (exactly as consecutive batches do), so
        only one chunk's decoded messages are alive at once; the output is the whole batch's.
        Within a chunk, the records keyed by their journey are decoded a journey at a time.
        """
        out = BatchOutput()
        current: dict[str, JourneyState] = {}  # the states this batch has changed so far
        for begin in range(0, len(records), max(1, chunk)):
            self._process_chunk(records[begin : begin + chunk], states, current, out)
        return out

    def close_idle(self, states: Mapping[str, tuple[int, JourneyState]]) -> BatchOutput:
        """Close windows whose watermark moved by the clock alone (no traffic)."""
        out = BatchOutput()
        for journey, (partition, state) in states.items():
            if self._close_windows(journey, state, out):
                out.states[journey] = (partition, state)
        return out

    # ------------------------------------------------------------------------------------

    def _process_chunk(
        self,
        records: Sequence[Record],
        states: Mapping[str, JourneyState],
        current: dict[str, JourneyState],
        out: BatchOutput,
    ) -> None:
        # A record keyed by a catalog journey whose bytes say so ("journey":"<key>", as every
        # producer writes it) is not decoded here: a RUM one is read raw by the compiled scan
        # when its journey is aggregated (`pre_aggregate_rum_raw`), a probe result decoded then;
        # a decoded message is ~4x its bytes. Any other record is decoded at once and routed by
        # the journey it names (as before).
        per_journey: dict[str, _JourneyBatch] = {}
        later: dict[str, list[Record]] = {}
        needles = self._needles
        for record in records:
            if record.key is not None:
                found = needles.get(record.key)
                if found is not None and found[1] in record.value:
                    waiting = later.get(found[0])
                    if waiting is None:
                        later[found[0]] = [record]
                    else:
                        waiting.append(record)
                    continue
            self._route(self._decode(record, out, None), record, per_journey)
        for journey, waiting in later.items():
            batch = per_journey.pop(journey, None) or _JourneyBatch()
            for record in waiting:
                if record.stream == RUM:
                    batch.raw_rum.append(record)
                else:
                    self._route(self._decode(record, out, journey), record, per_journey, batch)
            if batch.streams or batch.raw_rum:
                self._aggregate_journey(journey, batch, states, current, out)
        for journey, batch in per_journey.items():
            self._aggregate_journey(journey, batch, states, current, out)

    def _decode(self, record: Record, out: BatchOutput, keyed: str | None) -> Any:
        """Decode and check one record and keep its raw form. Returns the message when its
        journey's windows take it (a catalog journey), None otherwise; ``keyed``: the journey
        its key and bytes named, which it must turn out to be."""
        try:
            message = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            out.dead_letters.append((record, f"not JSON: {exc}"))
            return None
        first, second = _REQUIRED[record.stream]
        if type(message) is not dict or first not in message or second not in message:
            self._reject(record, message, out)
            return None
        journey = message.get("journey") or UNMAPPED
        if keyed is not None and journey != keyed:
            # "journey":"<key>" was in its bytes, but not as its own journey (a nested field):
            # its journey's records may be aggregated already, so it cannot join them
            out.dead_letters.append(
                (record, f"keyed by journey {keyed!r} but its journey is {journey!r}")
            )
            return None
        aggregated = journey in self.view.journeys and journey != UNMAPPED
        if aggregated:
            check = rum_problem if record.stream == RUM else synthetic_problem
            problem = check(message)
            if problem is not None:  # aggregation cannot read it: it would fail the batch
                out.dead_letters.append((record, problem))
                return None
        if record.stream == RUM:
            out.rum_messages.append(record.value)
        else:
            out.synthetic_results.append(message)
        return message if aggregated else None

    @staticmethod
    def _route(
        message: Any,
        record: Record,
        per_journey: dict[str, _JourneyBatch],
        batch: _JourneyBatch | None = None,
    ) -> None:
        if message is None:
            return
        if batch is None:
            journey = message["journey"]
            batch = per_journey.get(journey)
            if batch is None:
                batch = per_journey[journey] = _JourneyBatch()
        batch.add(record, message)

    def _aggregate_journey(
        self,
        journey: str,
        batch: _JourneyBatch,
        states: Mapping[str, JourneyState],
        current: dict[str, JourneyState],
        out: BatchOutput,
    ) -> None:
        state = current.get(journey) or states.get(journey) or self.decode_state(None)
        current[journey] = state
        partition = self._aggregate(journey, batch, state, out)
        if partition >= 0:
            state.partition = partition
        if state.partition >= 0:
            out.states[journey] = (state.partition, state)

    @staticmethod
    def _reject(record: Record, message: Any, out: BatchOutput) -> None:
        if not isinstance(message, dict):
            out.dead_letters.append((record, "a message must be a JSON object"))
            return
        missing = [name for name in _REQUIRED[record.stream] if name not in message]
        out.dead_letters.append((record, f"missing fields {missing}"))

    def _aggregate(
        self, journey: str, items: _JourneyBatch, state: JourneyState, out: BatchOutput
    ) -> int:
        closer = state.closer
        assert closer is not None
        partition = -1
        batches: list[tuple[str, BatchStates]] = []
        for stream in (RUM, SYNTHETIC):  # in this order, as before
            raw = items.raw_rum if stream == RUM else []
            if stream not in items.streams and not raw:
                continue
            mark = state.offsets.get(stream, -1)
            taken: list[Record] = []
            if raw:  # before the decoded ones: the records it does not take join them
                scanned, taken = self._scan_raw(journey, raw, mark, closer.watermark, items, out)
                if taken:
                    batches.append((stream, scanned))
            records, messages = items.streams.get(stream, ([], []))
            if records and min(map(_OFFSET, records)) <= mark:  # a replay: count what is new
                fresh = [(r, m) for r, m in zip(records, messages, strict=True) if r.offset > mark]
                out.replayed += len(records) - len(fresh)
                records = [r for r, _ in fresh]
                messages = [m for _, m in fresh]
            if not records and not taken:
                continue
            partition = (records or taken)[-1].partition
            state.offsets[stream] = max(map(_OFFSET, [*records, *taken]))
            if not records:
                continue
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

    def _scan_raw(
        self,
        journey: str,
        raw: list[Record],
        mark: int,
        watermark: float | None,
        items: _JourneyBatch,
        out: BatchOutput,
    ) -> tuple[BatchStates, list[Record]]:
        """Aggregate the undecoded RUM records of a journey with the compiled scan. Returns its
        row states and the records it took (kept raw); the others are decoded and checked as
        any record is and join ``items``. Replayed ones (offset not above ``mark``) are only
        decoded: kept raw again, not counted again."""
        if min(map(_OFFSET, raw)) > mark:
            fresh = raw  # the usual case: nothing replayed
        else:
            fresh = []
            for record in raw:
                if record.offset > mark:
                    fresh.append(record)
                elif self._decode(record, out, journey) is not None:
                    out.replayed += 1
            if not fresh:
                return BatchStates(), []
        values = [record.value for record in fresh]
        scanned, rest = pre_aggregate_rum_raw(
            values, journey, self.view, self.config.window_s, watermark, grace_s=self.config.grace_s
        )
        if not rest:  # the usual case: the scan took every message
            out.rum_messages.extend(values)
            return scanned, fresh
        left = set(rest)
        taken: list[Record] = []
        for i, record in enumerate(fresh):
            if i in left:
                message = self._decode(record, out, journey)
                if message is not None:
                    items.add(record, message)
            else:
                taken.append(record)
                out.rum_messages.append(record.value)
        return scanned, taken

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
