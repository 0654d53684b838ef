"""What every input-format parser receives and returns.

A parser turns one request body (or query string) into normalized :class:`RumEvent` objects
with the fields the format itself carries. Enrichment (journey and step, device, country,
probe flag, URL scrubbing) happens afterwards in the collector, the same for every format.
Items a parser cannot use become :class:`Rejected` entries (they go to the dead-letter topic
with the reason and their raw bytes); the rest of the batch still lands.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from journeylens.contracts.rum_beacons_v1 import RumEvent


class MalformedBody(ValueError):
    """The whole body is unusable (not JSON, wrong top-level shape): answer 400."""


class RequestMeta(NamedTuple):
    """What the collector knows about the request, independent of the format (immutable; a
    named tuple because it is built for every request, twice as fast as a frozen dataclass)."""

    app: str
    received_at: datetime
    user_agent: str | None = None
    content_type: str | None = None
    sample_rate: float = 1.0


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    raw: bytes
    item_index: int | None = None


@dataclass(slots=True)
class ParseResult:
    events: list[RumEvent] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class Parser(Protocol):
    def __call__(self, body: bytes, meta: RequestMeta) -> ParseResult: ...


def stable_id(*parts: object) -> str:
    """A deterministic event id from the parts that identify an event (same input, same id)."""
    digest = hashlib.blake2b(
        "\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8"), digest_size=16
    )
    return digest.hexdigest()
