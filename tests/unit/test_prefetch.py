"""`store.threads.prefetched`: batches in order, reader errors raised in the consumer, early exit stops the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from strato.store.threads import prefetched

SCHEMA = pa.schema([("x", pa.int64())])


def _reader(n: int, fail_at: int | None = None) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(n):
            if i == fail_at:
                raise OSError(f"disk gone at batch {i}")
            yield pa.record_batch([pa.array([i], pa.int64())], schema=SCHEMA)

    return pa.RecordBatchReader.from_batches(SCHEMA, batches())


def test_batches_arrive_in_order() -> None:
    assert [b.column(0)[0].as_py() for b in prefetched(_reader(50))] == list(range(50))


def test_a_reader_error_is_raised_after_the_batches_before_it() -> None:
    seen: list[int] = []

    def consume() -> None:
        for batch in prefetched(_reader(10, fail_at=3)):
            seen.append(batch.column(0)[0].as_py())

    with pytest.raises(OSError, match="disk gone at batch 3"):
        consume()
    assert seen == [0, 1, 2]


def test_leaving_early_stops_the_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    batches = prefetched(_reader(1000), depth=1)
    assert next(batches).column(0)[0].as_py() == 0
    batches.close()  # what a `break` out of the for loop does
    assert {t.ident for t in threading.enumerate() if t.name == "strato-prefetch"} - before == set()
