from collections.abc import Sequence

def encode(messages: Sequence[bytes], /) -> tuple[bytes, list[int]]:
    """RUM messages as one Native block of rum_events_input's columns (b'' when none), and the
    indexes of the messages left out (to be stored through JSONEachRow)."""
