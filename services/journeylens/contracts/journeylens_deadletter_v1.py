"""``journeylens.deadletter.v1``: input that could not be accepted, with reason and raw bytes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from journeylens.contracts.common import Contract, UtcDatetime

TOPIC = "journeylens.deadletter.v1"


class DeadLetter(Contract):
    source: str = Field(description="Where it came from: a collector format or a worker agent.")
    reason: str
    received_at: UtcDatetime
    raw_base64: str = Field(description="The rejected item's bytes, base64-encoded.")
    content_type: str | None = None
    app: str | None = None
    item_index: int | None = Field(default=None, description="Position in its batch, if any.")
    schema_version: Literal[1] = 1
