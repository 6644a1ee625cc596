"""Aerospike-only behaviour, on a real server: rule 4 across writer processes, native TTL on the
record, set naming, and a server that goes away mid-run. The shared contract lives in tests/contract/online.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aerospike
import pydantic
import pytest

from strato.errors import BackendFailure, BackendUnavailable
from strato.online.backends.aerospike import (
    SET_NAME_MAX,
    AerospikeOnlineStore,
    AerospikeOptions,
    set_name,
    user_key,
)
from strato.online.codec import HEADER, header

from . import harness

KEYS = [i.to_bytes(8, "big") for i in range(40)]
WRITERS = 4
EVENTS_PER_WRITER = 25


def v(event: int, created: int = 0, payload: bytes = b"") -> bytes:
    return HEADER.pack(event, created) + payload


@pytest.fixture
def options(tmp_path: Path) -> AerospikeOptions:
    return AerospikeOptions(**harness.options(tmp_path))


@pytest.fixture
def store(options: AerospikeOptions) -> Iterator[AerospikeOnlineStore]:
    with AerospikeOnlineStore.open(options, project="p") as opened:
        yield opened


@pytest.fixture
def raw(options: AerospikeOptions) -> Iterator[Any]:
    """A plain client on the same server, to look at records as Aerospike stores them."""
    client = aerospike.client({"hosts": options.seeds()}).connect()
    yield client
    client.close()


def writer(options: dict[str, Any], seed: int) -> None:
    """One writer process: its share of events for every key, in a shuffled order and random batches."""
    rng = random.Random(seed)
    items = [(key, seed + WRITERS * n) for key in KEYS for n in range(EVENTS_PER_WRITER)]
    rng.shuffle(items)
    with AerospikeOnlineStore.open(AerospikeOptions(**options), project="p") as store:
        while items:
            size = rng.randint(1, 30)
            batch, items = items[:size], items[size:]
            store.write("race", [k for k, _ in batch], [v(event, seed, b"w%d" % seed) for _, event in batch])


def test_concurrent_writer_processes_newest_event_wins(options: AerospikeOptions, store: AerospikeOnlineStore) -> None:
    """Writers race on every key with shuffled events; the greatest event must win on each one."""
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=writer, args=(options.model_dump(), seed)) for seed in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    newest = WRITERS * (EVENTS_PER_WRITER - 1) + WRITERS - 1  # seed 3's last event
    assert store.read("race", KEYS) == [v(newest, WRITERS - 1, b"w%d" % (WRITERS - 1))] * len(KEYS)
    assert store.write("race", KEYS[:1], [v(newest - 1, 99)]) == 0  # still enforced after the race


def test_native_ttl_is_on_the_record(store: AerospikeOnlineStore, options: AerospikeOptions, raw: Any) -> None:
    now_us = time.time_ns() // 1_000
    ttl = timedelta(hours=1)
    assert store.write("ttl", [b"fresh", b"half"], [v(now_us), v(now_us - 1_800_000_000)], ttl=ttl) == 2
    assert store.write("ttl", [b"forever"], [v(now_us)]) == 1
    set_ = set_name(options.set_prefix, "p", "ttl")

    def record_ttl(key: bytes) -> int:
        _, meta, _ = raw.get((options.namespace, set_, user_key(key)))
        return int(meta["ttl"])

    assert 3_500 < record_ttl(b"fresh") <= 3_600
    assert 1_700 < record_ttl(b"half") <= 1_800
    assert record_ttl(b"forever") == 2**32 - 1  # never expires
    # A newer event extends the record's life; a value already past its ttl is not written at all.
    assert store.write("ttl", [b"half"], [v(now_us)], ttl=ttl) == 1
    assert record_ttl(b"half") > 3_500
    assert store.write("ttl", [b"stale"], [v(now_us - 2 * 3_600_000_000)], ttl=ttl) == 0
    assert store.read("ttl", [b"stale"]) == [None]


def test_a_record_expires_on_the_server(store: AerospikeOnlineStore) -> None:
    now_us = time.time_ns() // 1_000
    store.write("short", [b"k"], [v(now_us)], ttl=timedelta(seconds=1))
    assert store.read("short", [b"k"]) == [v(now_us)]
    deadline = time.monotonic() + 10
    while store.read("short", [b"k"]) != [None]:
        assert time.monotonic() < deadline, "the record outlived its ttl by 10 s"
        time.sleep(0.25)


def test_the_packed_record_layout(store: AerospikeOnlineStore, options: AerospikeOptions, raw: Any) -> None:
    value = v(123, 45, b"payload")
    store.write("layout", [b"k"], [value])
    _, _, bins = raw.get((options.namespace, set_name(options.set_prefix, "p", "layout"), bytearray(b"k")))
    assert bins == {"v": value, "ev": 123, "cr": 45}
    assert header(bins["v"]) == (123, 45)


def test_set_names_fit_and_never_collide() -> None:
    names = {
        set_name(prefix, project, table)
        for prefix in ("", "x_")
        for project in ("a", "a_b", "a.b", "p" * 70, "é")
        for table in ("b_t", "t", "b.t", "t" * 70, "T")
    }
    assert len(names) == 2 * 5 * 5
    assert all(len(name) <= SET_NAME_MAX for name in names)
    assert set_name("", "fraud", "user_stats__v1") == "fraud.user_stats__v1"  # readable when it can be
    assert set_name("", "a.b", "c") != set_name("", "a", "b.c")


def test_option_validation() -> None:
    with pytest.raises(pydantic.ValidationError, match="host:port"):
        AerospikeOptions(hosts=["localhost"])
    with pytest.raises(pydantic.ValidationError, match="hosts"):
        AerospikeOptions(hosts=[])
    assert AerospikeOptions(hosts=["[::1]:3000"]).seeds() == [("[::1]", 3000)]


def test_an_unknown_namespace_is_a_clear_failure(options: AerospikeOptions) -> None:
    with pytest.raises(BackendFailure, match=r"no namespace 'nope'.*online\.namespace"):
        AerospikeOnlineStore.open(options.model_copy(update={"namespace": "nope"}), project="p")


def test_no_server_is_unavailable() -> None:
    harness.bundle()
    dead = AerospikeOptions(hosts=["127.0.0.1:1"], connect_timeout_ms=300)
    with pytest.raises(BackendUnavailable, match=r"cannot connect.*is the server running"):
        AerospikeOnlineStore.open(dead, project="p")


def test_server_stopped_mid_run_then_back(tmp_path: Path) -> None:
    """A server of its own: stopped, every call is a clear BackendUnavailable; restarted, the same store works."""
    server = harness.start_server(restartable=True)
    try:
        opts = AerospikeOptions(hosts=[server.address], read_timeout_ms=500, write_timeout_ms=500)
        store = AerospikeOnlineStore.open(opts, project="p")
        store.write("t", KEYS[:3], [v(1)] * 3)
        server.stop()
        with pytest.raises(BackendUnavailable, match="retry"):
            store.write("t", KEYS[:3], [v(2)] * 3)
        with pytest.raises(BackendUnavailable, match="retry"):
            store.read("t", KEYS[:1])
        with pytest.raises(BackendUnavailable, match="retry"):
            store.read("t", KEYS)
        with pytest.raises(BackendUnavailable):
            store.prune("t", 10)
        port = server.address.rsplit(":", 1)[1]
        harness.restart(server, port)
        deadline = time.monotonic() + 20
        while True:  # the client's tend thread finds the node again within a second or so
            try:
                assert store.write("t", KEYS[:3], [v(3)] * 3) == 3
                break
            except BackendUnavailable:
                assert time.monotonic() < deadline, "the store did not recover after the restart"
                time.sleep(0.2)
        assert store.read("t", KEYS[:3]) == [v(3)] * 3  # in-memory test server: the restart emptied it
        store.close()
    finally:
        harness.discard(server)
