"""Hand normalized events and dead letters to Kafka, and say "accepted" only once Kafka has.

- One aiokafka producer per process: ``acks=all``, large batches, lz4 compression (aiokafka
  needs ``cramjam`` for it; without it the sink falls back to gzip).
- Group commit: the messages of concurrent requests share one batch per partition. A
  request appends its encoded messages to the open batch of each partition (aiokafka's C
  batch builder, no per-message future) and awaits those batches once. One shipper closes
  the open batches of *all* partitions together and hands them to one aiokafka producer in
  the same loop iteration, so they leave as one produce request per broker (a round). A
  round leaves when a connection is free and ``linger`` after its oldest batch was opened,
  or sooner once a whole pass of the event loop added nothing to it (every request in
  hand has appended: waiting longer would only idle). There are ``kafka_connections``
  producers (aiokafka keeps one request in flight per broker connection), so the next
  round is sent while the last one is on its way: clients that send their next beacon only
  after the answer would otherwise leave the process idle for every round trip. Under load
  each produce request carries everything that arrived meanwhile, and the per-request cost
  of aiokafka (which dominates small beacons) is paid once per round, not per partition.
  Order across requests is not kept (concurrent requests have none); a request's messages
  to one partition are in one batch, in order.
- RUM events are keyed by journey id, so RUM and synthetic events of a journey share a
  partition (both topics use the default murmur2 partitioner and the same partition count).
  Dead letters are keyed by their source.
- `KafkaSink.publish` returns only when every message of the request is acknowledged. The
  number of events in flight is bounded (``CollectorSettings.buffer_max_events``): past it, or
  when Kafka does not acknowledge within ``ack_timeout_s``, `SinkUnavailable` is raised and the
  collector answers 503 with Retry-After. Nothing is accepted and then dropped: a message whose
  fate is unknown may arrive twice (event ids are deterministic, sinks downstream are
  idempotent), never zero times after a 2xx.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from journeylens.collector.formats.base import Rejected
from journeylens.compression import lz4_frame
from journeylens.contracts.journeylens_deadletter_v1 import DeadLetter
from journeylens.contracts.rum_beacons_v1 import RumEvent
from journeylens.settings import CollectorSettings, KafkaSettings, Topic

log = logging.getLogger(__name__)

DEFAULT_ACK_TIMEOUT_S = 5.0
MAX_BATCH_BYTES = 512 * 1024
READY_CACHE_S = 1.0
RECONNECT_BACKOFF_S = 1.0


class SinkUnavailable(RuntimeError):
    """Kafka is down, slow or the in-flight buffer is full: answer 503 and let the client retry."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class EventSink(Protocol):
    """Where the collector hands accepted events (Kafka in production)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ready(self) -> bool: ...

    async def publish(self, events: Sequence[RumEvent], dead: Sequence[DeadLetter]) -> None:
        """Return once every message is durably acknowledged; raise `SinkUnavailable` if not."""
        ...


def dead_letter(
    rejected: Rejected,
    *,
    source: str,
    received_at: datetime,
    app: str | None,
    content_type: str | None,
) -> DeadLetter:
    """The dead-letter message for one rejected item (its raw bytes base64-encoded)."""
    return DeadLetter(
        source=source,
        reason=rejected.reason[:1024],
        received_at=received_at,
        raw_base64=base64.b64encode(rejected.raw).decode("ascii"),
        content_type=content_type,
        app=app,
        item_index=rejected.item_index,
    )


def _fields(value: object) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(message: RumEvent | DeadLetter) -> bytes:
    """The Kafka value of a message: the JSON of ``message.model_dump(mode="json")``.

    Built by orjson straight from the models' field dicts (5x faster on the hot path); a
    unit test holds it byte-identical to ``orjson.dumps(message.model_dump(mode="json"))``.
    """
    return orjson.dumps(message.__dict__, default=_fields, option=orjson.OPT_UTC_Z)


class KeyPartitioner:
    """aiokafka's default partitioner (murmur2 of the key) with the answer cached per key.

    Keys are journey ids or sources: a few hundred at most, each hashed once instead of per
    message. Same partition as the default partitioner, so co-partitioning is kept.
    """

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        self._default = DefaultPartitioner()
        self._cache: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        slot = (key, len(all_partitions))
        partition = self._cache.get(slot)
        if partition is None:
            partition = int(self._default(key, all_partitions, available))
            if len(self._cache) < self.MAX_KEYS:
                self._cache[slot] = partition
        return partition


def use_fast_lz4() -> bool:
    """Make this process's aiokafka batches use LZ4 level 1 instead of its default 9.

    aiokafka >= 0.11 compresses at level 9 with no option to change it (aio-libs/aiokafka
    #1028): about 7x the CPU of level 1 (8 vs 1.2 µs per beacon) for batches 1-2 % smaller.
    The batch builders call ``lz4_encode`` through their module globals, so those names are
    replaced; consumers and the broker read either level. False when aiokafka's layout is not
    the one this was written for (aiokafka is pinned).
    """
    import importlib

    replaced = False
    for name in ("aiokafka.record._crecords.default_records", "aiokafka.record.default_records"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "lz4_encode"):
            setattr(module, "lz4_encode", lz4_frame)  # noqa: B010 - a module global
            replaced = True
    return replaced


def producer_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka producer options: durable (acks=all), batched, compressed.

    ``linger_ms`` is 0 because the sink lingers itself (`KafkaSink`'s group commit).
    """
    from aiokafka.codec import has_lz4

    from journeylens.stack.topics import admin_client_options

    options = admin_client_options(kafka)
    options.update(
        acks="all",
        linger_ms=0,
        max_batch_size=MAX_BATCH_BYTES,
        max_request_size=4 * 1024 * 1024,
        compression_type="lz4" if has_lz4() else "gzip",
        request_timeout_ms=15_000,
        retry_backoff_ms=200,
        metadata_max_age_ms=60_000,
    )
    return options


class _Batch:
    """One producer batch of one partition: messages of any number of requests."""

    __slots__ = ("builder", "count", "opened_at", "delivered", "waiters", "expiry")

    def __init__(self, builder: Any, opened_at: float, delivered: asyncio.Future[None]) -> None:
        self.builder = builder
        self.count = 0
        self.opened_at = opened_at
        self.delivered = delivered
        """Settled once Kafka answered (or the ack timeout passed); never awaited by requests."""
        self.expiry: asyncio.TimerHandle | None = None
        """Fails the batch once the ack timeout passed; cancelled when it is settled."""
        self.waiters: list[asyncio.Future[None]] = []
        """One future per request awaiting this batch: a request that goes away (cancelled)
        cancels its own future, never the batch's (cheaper than ``asyncio.shield``)."""

    def wait(self) -> asyncio.Future[None]:
        """A future settled like ``delivered`` (already settled when the batch is)."""
        if self.delivered.done():
            return self.delivered
        waiter: asyncio.Future[None] = self.delivered.get_loop().create_future()
        self.waiters.append(waiter)
        return waiter


class _Partition:
    """The batches of one topic partition waiting to be sent, in order (the oldest leaves
    with the next round; a round per connection may be in flight)."""

    __slots__ = ("topic", "partition", "waiting")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.waiting: deque[_Batch] = deque()

    @property
    def open(self) -> _Batch | None:
        """The batch new messages go to (the last waiting one), if any."""
        return self.waiting[-1] if self.waiting else None


class KafkaSink:
    """`EventSink` on an aiokafka producer: group commit, bounded number of events in flight."""

    def __init__(
        self,
        kafka: KafkaSettings,
        collector: CollectorSettings,
        *,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        linger_s: float | None = None,
        producer_factory: Any = None,
    ) -> None:
        self._kafka = kafka
        self._max_in_flight = collector.buffer_max_events
        self._retry_after_s = collector.retry_after_s
        self._ack_timeout_s = ack_timeout_s
        self._linger_s = collector.linger_ms / 1000 if linger_s is None else linger_s
        self._factory = producer_factory
        self._events_topic = kafka.physical(Topic.RUM_BEACONS)
        self._dead_topic = kafka.physical(Topic.DEADLETTER)
        self._producers: list[Any] = []
        self._connections = collector.kafka_connections
        self._starter: asyncio.Task[None] | None = None
        self._partitioner = KeyPartitioner()
        self._partition_ids: dict[str, list[int]] = {}
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self._wakeup = asyncio.Event()
        self._shipper: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._appended = 0
        """Messages appended so far (the shipper's sign that requests are still arriving)."""
        self._ready_at = 0.0
        self._ready = False

    @property
    def _producer(self) -> Any:
        """The first producer (metadata, readiness), ``None`` until connected."""
        return self._producers[0] if self._producers else None

    @property
    def in_flight(self) -> int:
        """Events handed to the producer and not yet acknowledged (or failed)."""
        return self._in_flight

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect to Kafka; if it is not reachable, keep trying in the background."""
        if self._producer is not None or self._starter is not None:
            return
        if not await self._try_start():
            self._starter = asyncio.create_task(self._keep_starting(), name="kafka-sink-start")

    async def _try_start(self) -> bool:
        producers = [self._new_producer() for _ in range(self._connections)]
        try:
            for producer in producers:
                await producer.start()
        except Exception as exc:  # aiokafka raises several error types while bootstrapping
            log.warning("Kafka not reachable at %s: %s", self._kafka.bootstrap_servers, exc)
            for producer in producers:
                with contextlib.suppress(Exception):
                    await producer.stop()
            return False
        self._producers = producers
        return True

    async def _keep_starting(self) -> None:
        while not await self._try_start():
            await asyncio.sleep(RECONNECT_BACKOFF_S)
        self._starter = None

    def _new_producer(self) -> Any:
        if self._factory is not None:
            return self._factory()
        from aiokafka import AIOKafkaProducer

        use_fast_lz4()
        return AIOKafkaProducer(**producer_options(self._kafka))

    async def stop(self) -> None:
        """Ship and await what is pending (bounded by the ack timeout), close the producer."""
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
            self._starter = None
        pending = [b.delivered for p in self._partitions.values() for b in p.waiting]
        if pending:
            await asyncio.wait(pending, timeout=self._ack_timeout_s)
        shipper, self._shipper = self._shipper, None
        if shipper is not None:
            shipper.cancel()
            await asyncio.gather(shipper, return_exceptions=True)
        self._partitions.clear()
        self._wakeup = asyncio.Event()  # a restarted sink may run on another event loop
        producers, self._producers = self._producers, []
        for producer in producers:
            await producer.stop()

    async def ready(self) -> bool:
        """True when the producer is connected and a broker answers metadata (cached 1 s)."""
        if self._producer is None:
            return False
        now = time.monotonic()
        if now - self._ready_at < READY_CACHE_S:
            return self._ready
        self._ready_at = now
        try:
            cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
            self._ready = bool(cluster.brokers())
        except Exception:  # any failure to get metadata means not ready
            self._ready = False
        return self._ready

    # ------------------------------------------------------------------ publishing

    async def publish(self, events: Sequence[RumEvent], dead: Sequence[DeadLetter]) -> None:
        count = len(events) + len(dead)
        if count == 0:
            return
        producer = self._producer
        if producer is None:
            raise SinkUnavailable("Kafka is not connected yet", self._retry_after_s)
        if self._in_flight + count > self._max_in_flight:
            raise SinkUnavailable(
                f"{self._in_flight} events are waiting for Kafka (limit {self._max_in_flight})",
                self._retry_after_s,
            )
        try:
            for topic in (self._events_topic,) if events else ():
                if topic not in self._partition_ids:
                    await asyncio.wait_for(self._partition_ids_of(producer, topic), 2.0)
            if dead and self._dead_topic not in self._partition_ids:
                await asyncio.wait_for(self._partition_ids_of(producer, self._dead_topic), 2.0)
        except TimeoutError:
            raise self._unavailable(None) from None
        except Exception as exc:  # KafkaError and friends while looking up partitions
            raise self._unavailable(exc) from exc
        # Each batch fails itself with TimeoutError when Kafka has not acknowledged it within
        # the ack timeout; its messages keep their place in the in-flight budget until Kafka
        # acknowledges or expires them.
        for batch in self._append(producer, events, dead):
            try:
                await batch.wait()
            except TimeoutError:
                raise self._unavailable(None) from None
            except Exception as exc:  # KafkaError and friends from the producer
                raise self._unavailable(exc) from exc

    def _unavailable(self, error: BaseException | None) -> SinkUnavailable:
        self._ready = False
        if error is None:
            reason = f"Kafka did not acknowledge within {self._ack_timeout_s:g}s"
        else:
            log.warning("Kafka send failed: %r", error)
            reason = f"Kafka send failed: {type(error).__name__}"
        return SinkUnavailable(reason, self._retry_after_s)

    def _append(
        self, producer: Any, events: Sequence[RumEvent], dead: Sequence[DeadLetter]
    ) -> set[_Batch]:
        """Add every message to the open batch of its partition; the batches to await."""
        batches: set[_Batch] = set()
        if events:
            topic = self._events_topic
            ids = self._partition_ids[topic]
            for event in events:
                self._add(producer, topic, ids, event.journey.encode(), event, batches)
        if dead:
            topic = self._dead_topic
            ids = self._partition_ids[topic]
            for letter in dead:
                self._add(producer, topic, ids, letter.source.encode(), letter, batches)
        return batches

    async def _partition_ids_of(self, producer: Any, topic: str) -> list[int]:
        ids = self._partition_ids.get(topic)
        if ids is None:
            ids = sorted(await producer.partitions_for(topic))
            if not ids:
                raise SinkUnavailable(f"topic {topic} has no partitions", self._retry_after_s)
            self._partition_ids[topic] = ids
        return ids

    def _add(
        self,
        producer: Any,
        topic: str,
        ids: list[int],
        key: bytes,
        message: RumEvent | DeadLetter,
        batches: set[_Batch],
    ) -> None:
        number = self._partitioner(key, ids, ids)
        partition = self._partitions.get((topic, number))
        if partition is None:
            partition = self._partitions[(topic, number)] = _Partition(topic, number)
        value = encode(message)
        batch = partition.open
        if batch is None or batch.builder.append(timestamp=None, key=key, value=value) is None:
            loop = asyncio.get_running_loop()
            now = loop.time()
            batch = _Batch(producer.create_batch(), now, loop.create_future())
            batch.expiry = loop.call_at(now + self._ack_timeout_s, _expire, batch)
            if batch.builder.append(timestamp=None, key=key, value=value) is None:
                raise SinkUnavailable("a message exceeds the producer batch size", 0)
            partition.waiting.append(batch)
            self._wakeup.set()
            if self._shipper is None or self._shipper.done():
                self._shipper = asyncio.create_task(
                    self._ship(list(self._producers)), name="kafka-sink"
                )
        batch.count += 1
        self._in_flight += 1
        self._appended += 1
        batches.add(batch)

    async def _ship(self, producers: list[Any]) -> None:
        """Rounds: close every partition's oldest batch and send them together on a free
        connection; at most one round per connection in flight."""
        loop = asyncio.get_running_loop()
        partitions = self._partitions
        free = list(producers)
        freed = asyncio.Event()
        while True:
            ready = [p for p in partitions.values() if p.waiting]
            if not ready:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = min(p.waiting[0].opened_at for p in ready) + self._linger_s
            if deadline > loop.time() and all(len(p.waiting) == 1 for p in ready):
                await self._linger(loop, deadline)
                ready = [p for p in partitions.values() if p.waiting]
            if not free:  # every connection has a round in flight: the batches grow
                freed.clear()
                await freed.wait()
                continue
            producer = free.pop()
            sent = await self._send_round(producer, ready)
            _Round(self, sent, functools.partial(_release, producer, free, freed))

    async def _send_round(
        self, producer: Any, ready: list[_Partition]
    ) -> list[tuple[_Batch, asyncio.Future[Any]]]:
        sent: list[tuple[_Batch, asyncio.Future[Any]]] = []
        for partition in ready:
            batch = partition.waiting.popleft()  # closed: new messages open the next one
            try:
                future = await producer.send_batch(
                    batch.builder, partition.topic, partition=partition.partition
                )
            except Exception as exc:  # KafkaError and friends: the requests answer 503
                self._done(batch, exc)
            else:
                sent.append((batch, future))
        return sent

    async def _linger(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Keep the open batches open until ``deadline``, or until a whole pass of the event
        loop added nothing to them: then every request being handled has appended its
        messages, and waiting longer would leave the process idle while they all wait for
        Kafka (closed-loop clients send their next beacon only after the answer)."""
        while True:
            appended = self._appended
            await asyncio.sleep(0)
            if self._appended == appended or loop.time() >= deadline:
                return

    def _done(self, batch: _Batch, error: BaseException | None) -> None:
        """Kafka answered or gave up on ``batch``: its fate is known, its budget is freed."""
        _settle(batch, error)
        self._in_flight -= batch.count


def _settle(batch: _Batch, error: BaseException | None) -> None:
    delivered = batch.delivered
    if delivered.done():  # expired earlier: the requests already answered 503
        return
    if batch.expiry is not None:
        batch.expiry.cancel()
    if error is None:
        delivered.set_result(None)
    else:
        delivered.set_exception(error)
        delivered.exception()  # retrieved: the requests awaiting it may be gone
    waiters, batch.waiters = batch.waiters, []
    for waiter in waiters:
        if waiter.done():  # its request was cancelled
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
            waiter.exception()


class _Round:
    """One produce request in flight on one connection: each batch is settled as Kafka
    answers it (a done callback: no task or gather per round), and the connection is given
    back once every batch of the round is answered."""

    __slots__ = ("sink", "pending", "release")

    def __init__(
        self,
        sink: KafkaSink,
        sent: list[tuple[_Batch, asyncio.Future[Any]]],
        release: Callable[[], None],
    ) -> None:
        self.sink = sink
        self.pending = len(sent)
        self.release = release
        if not sent:
            release()
        for batch, future in sent:
            future.add_done_callback(functools.partial(self._answered, batch))

    def _answered(self, batch: _Batch, future: asyncio.Future[Any]) -> None:
        error = asyncio.CancelledError() if future.cancelled() else future.exception()
        self.sink._done(batch, error)
        self.pending -= 1
        if self.pending == 0:
            self.release()


def _release(producer: Any, free: list[Any], freed: asyncio.Event) -> None:
    """A round is over: its connection is free for the next one."""
    free.append(producer)
    freed.set()


def _expire(batch: _Batch) -> None:
    _settle(batch, TimeoutError("Kafka did not acknowledge in time"))
