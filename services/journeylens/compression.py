"""LZ4 frames at a fast level: Kafka batches (the collector) and changelogged state (the worker)."""

from __future__ import annotations

from typing import Any

LZ4_FAST_LEVEL = 1


def lz4_frame(payload: Any, level: int = LZ4_FAST_LEVEL) -> bytes:
    """An LZ4 frame as Kafka reads it (no content checksum, independent blocks)."""
    import cramjam  # imported here: the collector's producer falls back to gzip without it

    compressor = cramjam.lz4.Compressor(level=level, content_checksum=False, block_linked=False)
    compressor.compress(payload)
    return bytes(compressor.finish())
