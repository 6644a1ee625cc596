"""`read_tables`: several tables in one call give what `read` gives table by table.

The lookup path sends every view of a request in one call; backends answer it in one round
trip (Redis MGET or one pipeline per cluster node, one Aerospike batch across sets, one LMDB
snapshot). Whatever the backend does, the answer must be the per-table reads, in order.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato.online.base import OnlineStore
from strato.online.codec import HEADER

TABLES = ("a__v1", "b__v1", "c__v2")


def value(n: int) -> bytes:
    return HEADER.pack(1_000 + n, 1) + n.to_bytes(4, "little")


def fill(store: OnlineStore, seed: int) -> dict[str, dict[bytes, bytes]]:
    rng = random.Random(seed)
    written: dict[str, dict[bytes, bytes]] = {}
    for t, table in enumerate(TABLES):
        keys = sorted({rng.randrange(40).to_bytes(2, "big") for _ in range(25)})
        values = [value(t * 1000 + i) for i in range(len(keys))]
        store.write(table, keys, values)
        written[table] = dict(zip(keys, values, strict=True))
    return written


def test_read_tables_equals_reads_table_by_table(online_store: OnlineStore) -> None:
    written = fill(online_store, seed=1)
    requests = [(table, [k.to_bytes(2, "big") for k in range(0, 40, 3)]) for table in TABLES]
    got = online_store.read_tables(requests)
    assert got == [online_store.read(table, keys) for table, keys in requests]
    assert got == [[written[table].get(k) for k in keys] for table, keys in requests]


def test_read_tables_of_one_entity_across_views(online_store: OnlineStore) -> None:
    """The usual lookup: one entity in every view (on a cluster, one slot: one trip)."""
    written = fill(online_store, seed=2)
    key = next(iter(written["a__v1"]))
    got = online_store.read_tables([(table, [key]) for table in TABLES])
    assert got == [[written[table].get(key)] for table in TABLES]


@pytest.mark.parametrize("shape", [[], [("a__v1", [])], [("a__v1", []), ("b__v1", [b"\x00\x01"]), ("c__v2", [])]])
def test_read_tables_with_empty_requests(online_store: OnlineStore, shape: list[tuple[str, list[bytes]]]) -> None:
    fill(online_store, seed=3)
    assert online_store.read_tables(shape) == [online_store.read(table, keys) for table, keys in shape]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(TABLES), st.lists(st.integers(0, 45), max_size=12)), max_size=5))
def test_read_tables_any_mix(online_store: OnlineStore, mix: list[tuple[str, list[int]]]) -> None:
    """(The store is filled once for every example: writes only ever give the same values.)"""
    fill(online_store, seed=4)
    requests = [(table, [k.to_bytes(2, "big") for k in keys]) for table, keys in mix]
    assert online_store.read_tables(requests) == [online_store.read(table, keys) for table, keys in requests]
