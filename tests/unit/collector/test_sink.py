"""The sink's Kafka batches: compressed at a fast LZ4 level, readable by any consumer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest


def test_batches_are_lz4_level_1_and_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import cramjam
    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from aiokafka.record.memory_records import MemoryRecords

    from journeylens.collector.sink import use_fast_lz4

    levels: list[int] = []
    real = cramjam.lz4.Compressor

    def spy(*, level: int, **options: Any) -> Any:
        levels.append(level)
        return real(level=level, **options)

    monkeypatch.setattr(cramjam.lz4, "Compressor", spy)
    assert use_fast_lz4()
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=3, is_transactional=False, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    values = [orjson.dumps({"i": i, "url": f"https://shop.test/p/{i}" * 20}) for i in range(50)]
    for value in values:
        builder.append(0, timestamp=None, key=b"checkout", value=value, headers=[])
    batch = MemoryRecords(bytes(builder.build())).next_batch()
    assert levels == [1]
    assert [record.value for record in batch] == values
