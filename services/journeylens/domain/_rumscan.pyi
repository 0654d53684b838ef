from typing import Any

def scan(
    values: list[bytes],
    journey: str,
    steps: dict[str, float],
    window_s: int,
    closed_to: float,
    inv: float,
    lowest: float,
    zero: int,
    journey_level: str,
) -> tuple[bytes, list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, int], int, int]: ...
