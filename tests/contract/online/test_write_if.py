"""`write_if`: a per-key compare-and-set decided by the engine (`Capabilities.compare_and_set`).

What every backend that declares the capability guarantees, held here on its real engine:

* per key, the value is written only if the stored bytes are exactly the expected ones
  (None: the key is absent), and the answer says which keys were written, in order;
* a whole-value comparison: a stored value with the same 16-byte header but other bytes is
  not "the same";
* the batch is checked before anything is sent: mismatched lengths and a repeated key are
  `ValueError`, a key or value of the wrong type `TypeError`, and nothing is written;
* ordinary `write` keeps rule 4 around it;
* several real processes incrementing the same counters with retry loops lose no update.
"""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from strato.online.base import OnlineStore
from strato.online.codec import HEADER

from .conftest import Backend
from .racers import COUNTER_TABLE, count_of, increment

TABLE = "cas__v1"


def v(event: int, created: int = 0, tag: bytes = b"") -> bytes:
    return HEADER.pack(event, created) + tag


@pytest.fixture
def cas_store(online_store: OnlineStore) -> OnlineStore:
    if not online_store.capabilities.compare_and_set:
        pytest.skip(f"{type(online_store).__name__} does not declare Capabilities.compare_and_set")
    return online_store


def test_absent_means_absent(cas_store: OnlineStore) -> None:
    assert cas_store.write_if(TABLE, [b"a", b"b"], [None, None], [v(1), v(2)]) == [True, True]
    assert cas_store.write_if(TABLE, [b"a", b"c"], [None, None], [v(3), v(4)]) == [False, True]
    assert cas_store.read(TABLE, [b"a", b"b", b"c"]) == [v(1), v(2), v(4)]


def test_written_only_where_the_stored_bytes_still_match(cas_store: OnlineStore) -> None:
    cas_store.write(TABLE, [b"a", b"b", b"c"], [v(1, tag=b"x"), v(1, tag=b"y"), v(1)])
    won = cas_store.write_if(
        TABLE,
        [b"a", b"b", b"c", b"d"],
        [v(1, tag=b"x"), v(1, tag=b"z"), None, v(1)],  # b: same header, other bytes; c: not absent; d: absent
        [v(0, tag=b"new-a"), v(9), v(9), v(9)],
    )
    assert won == [True, False, False, False]
    # Not rule 4: the winner's value is stored even though its event time is older.
    assert cas_store.read(TABLE, [b"a", b"b", b"c", b"d"]) == [v(0, tag=b"new-a"), v(1, tag=b"y"), v(1), None]


def test_a_stale_expectation_loses_after_another_write(cas_store: OnlineStore) -> None:
    first = v(1, tag=b"first")
    assert cas_store.write_if(TABLE, [b"k"], [None], [first]) == [True]
    assert cas_store.write_if(TABLE, [b"k"], [first], [v(2)]) == [True]
    assert cas_store.write_if(TABLE, [b"k"], [first], [v(3)]) == [False]  # what it read is gone
    assert cas_store.read(TABLE, [b"k"]) == [v(2)]


def test_ordinary_writes_keep_rule_4_around_it(cas_store: OnlineStore) -> None:
    assert cas_store.write_if(TABLE, [b"k"], [None], [v(5)]) == [True]
    assert cas_store.write(TABLE, [b"k"], [v(4)]) == 0
    assert cas_store.write(TABLE, [b"k"], [v(6)]) == 1
    assert cas_store.write_if(TABLE, [b"k"], [v(5)], [v(7)]) == [False]
    assert cas_store.read(TABLE, [b"k"]) == [v(6)]


def test_tables_are_separate(cas_store: OnlineStore) -> None:
    cas_store.write(TABLE, [b"k"], [v(1)])
    assert cas_store.write_if("other__v1", [b"k"], [None], [v(2)]) == [True]
    assert cas_store.read(TABLE, [b"k"]) == [v(1)]


def test_an_empty_batch(cas_store: OnlineStore) -> None:
    assert cas_store.write_if(TABLE, [], [], []) == []


def test_a_large_batch_answers_every_key_in_order(cas_store: OnlineStore) -> None:
    n = min(cas_store.capabilities.max_batch_rows, 4_500)
    keys = [f"k{i:05d}".encode() for i in range(n)]
    cas_store.write(TABLE, keys[::2], [v(1)] * len(keys[::2]))
    won = cas_store.write_if(TABLE, keys, [None] * n, [v(2, tag=k) for k in keys])
    assert won == [i % 2 == 1 for i in range(n)]
    assert cas_store.read(TABLE, keys) == [v(1) if i % 2 == 0 else v(2, tag=k) for i, k in enumerate(keys)]


@pytest.mark.parametrize(
    ("keys", "expected", "values", "error"),
    [
        ([b"a", b"b"], [None], [v(1), v(1)], ValueError),
        ([b"a", b"b"], [None, None], [v(1)], ValueError),
        ([b"a", b"a"], [None, None], [v(1), v(2)], ValueError),
        ([b"a", "b"], [None, None], [v(1), v(2)], TypeError),
        ([b"a", b"b"], [None, "x"], [v(1), v(2)], TypeError),
        ([b"a", b"b"], [None, None], [v(1), b"short"], TypeError),
    ],
    ids=["expected-length", "values-length", "repeated-key", "key-type", "expected-type", "short-value"],
)
def test_a_malformed_batch_writes_nothing(
    cas_store: OnlineStore, keys: list[bytes], expected: list[bytes | None], values: list[bytes], error: type
) -> None:
    with pytest.raises(error):
        cas_store.write_if(TABLE, keys, expected, values)
    assert cas_store.read(TABLE, [b"a", b"b"]) == [None, None]
    assert cas_store.write_if(TABLE, [b"a"], [None], [v(1)]) == [True]  # still usable


RACERS = 4
INCREMENTS = 25
COUNTERS = [b"c0", b"c1", b"c2"]


def test_racing_processes_lose_no_increment(online_backend: Backend) -> None:
    store = online_backend.open()
    if not store.capabilities.compare_and_set:
        pytest.skip(f"{online_backend.cls.__name__} does not declare Capabilities.compare_and_set")
    if store.capabilities.persistent:
        # Real processes, each with its own connection (its own LMDB environment), all at once.
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        options = online_backend.options.model_dump()
        racers = [
            ctx.Process(target=increment, args=(online_backend.name, options, r, COUNTERS, INCREMENTS, start))
            for r in range(RACERS)
        ]
        for p in racers:
            p.start()
        start.set()
        for p in racers:
            p.join(timeout=240)
        assert [p.exitcode for p in racers] == [0] * RACERS
    else:
        # Data that lives in one process object: race threads on that one store instead.
        gate = threading.Event()
        threads = [
            threading.Thread(target=increment, args=(None, store, r, COUNTERS, INCREMENTS, gate)) for r in range(RACERS)
        ]
        for t in threads:
            t.start()
        gate.set()
        for t in threads:
            t.join(timeout=120)
    assert [count_of(value) for value in store.read(COUNTER_TABLE, COUNTERS)] == [RACERS * INCREMENTS] * len(COUNTERS)
