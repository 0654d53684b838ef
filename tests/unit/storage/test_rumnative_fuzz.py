"""The Native encoder on damaged messages: it never fails on one, takes each message whole or
leaves it out, and decides on a message the same way whatever else is in the batch."""

from __future__ import annotations

import random

import pytest
from tests.fixtures.damaged_messages import damaged_messages

_rumnative = pytest.importorskip("journeylens.storage._rumnative")


def test_damaged_messages_are_taken_whole_or_left_out_alike_alone_and_in_a_batch() -> None:
    messages = damaged_messages(seed=5, count=3_000)
    block, refused = _rumnative.encode(messages)
    assert refused == sorted(set(refused))
    taken = [m for i, m in enumerate(messages) if i not in set(refused)]
    assert 0 < len(taken) < len(messages)  # the mutations leave some messages readable
    # the block holds exactly the taken messages: encoding only them gives the same block
    assert _rumnative.encode(taken) == (block, [])
    for index in random.Random(6).sample(range(len(messages)), 300):
        alone_block, alone_refused = _rumnative.encode([messages[index]])
        assert (alone_refused == [0]) == (index in set(refused))
        assert (alone_block == b"") == (index in set(refused))
