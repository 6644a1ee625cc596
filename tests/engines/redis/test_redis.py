"""Redis-only behaviour: rule 4 decided on the server across processes, native expiry on the
server, the key layout, and a server going away and coming back. The shared contract lives
in tests/contract/online.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64
from strato.config import write_default_config
from strato.errors import BackendFailure, BackendUnavailable
from strato.online.backends.redis import RedisOnlineStore, RedisOptions
from strato.online.codec import HEADER, is_newer

from . import harness

pytestmark = pytest.mark.redis

INT64 = st.integers(-(2**63), 2**63 - 1)


def v(event: int, created: int = 0, payload: bytes = b"") -> bytes:
    return HEADER.pack(event, created) + payload


def options(tmp_path: Path, **overrides: Any) -> RedisOptions:
    return RedisOptions(**(harness.options(tmp_path) | overrides))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with RedisOnlineStore.open(options(tmp_path), project="p") as opened:
        yield opened


def raw(opts: RedisOptions) -> redis.Redis:
    return redis.Redis.from_url(opts.url)


def test_option_defaults_and_validation() -> None:
    defaults = RedisOptions()
    assert (defaults.url, defaults.cluster, defaults.key_prefix) == ("redis://localhost:6379/0", False, "")
    for bad in ({"url": "localhost:6379"}, {"socket_timeout_s": 0}, {"max_connections": 0}, {"urll": "x"}):
        with pytest.raises(pydantic.ValidationError):
            RedisOptions(**bad)


def test_key_layout_is_prefix_project_table_nul_key(tmp_path: Path) -> None:
    opts = options(tmp_path)
    with RedisOnlineStore.open(opts, project="proj") as store:
        store.write("stats__v1", [b"\x00\x01"], [v(1, 2, b"x")])
    assert raw(opts).get(f"{opts.key_prefix}proj/stats__v1\x00".encode() + b"\x00\x01") == v(1, 2, b"x")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.tuples(INT64, INT64), second=st.tuples(INT64, INT64))
def test_server_side_comparison_is_codec_is_newer(store: RedisOnlineStore, first: Any, second: Any) -> None:
    """The Lua script orders headers exactly as `codec.is_newer`, extremes and negatives included."""
    store.drop("t")
    old, new = v(*first, b"old"), v(*second, b"new")
    store.write("t", [b"k"], [old])
    replaced = store.write("t", [b"k"], [new])
    assert replaced == int(is_newer(new, old))
    assert store.read("t", [b"k"]) == [new if is_newer(new, old) else old]


def _writer(opts: dict[str, Any], seed: int, events: list[tuple[int, int]]) -> None:
    """A writer process: its (event, key) pairs in random order and random batch sizes."""
    rng = random.Random(seed)
    store = RedisOnlineStore.open(RedisOptions(**opts), project="p")
    items = [(f"k{key}".encode(), v(event, seed, seed.to_bytes(2, "big"))) for event, key in events]
    rng.shuffle(items)
    while items:
        size = rng.randint(1, 40)
        batch, items = items[:size], items[size:]
        store.write("t", [k for k, _ in batch], [val for _, val in batch])
    store.close()


def check_concurrent_writers(opts: RedisOptions, n_keys: int = 50, n_writers: int = 4) -> None:
    """Writer processes race on the same keys with shuffled event times; the server keeps the newest."""
    rng = random.Random(7)
    plans = {seed: [(rng.randint(0, 1_000), rng.randrange(n_keys)) for _ in range(600)] for seed in range(n_writers)}
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(opts.model_dump(), seed, plan)) for seed, plan in plans.items()]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    expected: dict[bytes, bytes] = {}
    for seed, plan in plans.items():
        for event, key in plan:
            k, val = f"k{key}".encode(), v(event, seed, seed.to_bytes(2, "big"))
            if k not in expected or is_newer(val, expected[k]):
                expected[k] = val
    keys = sorted(expected)
    with RedisOnlineStore.open(opts, project="p") as store:
        assert dict(zip(keys, store.read("t", keys), strict=True)) == expected


def test_concurrent_writer_processes_never_let_an_older_event_win(tmp_path: Path) -> None:
    check_concurrent_writers(options(tmp_path))


def test_native_ttl_expires_on_the_server(tmp_path: Path) -> None:
    opts = options(tmp_path)
    client = raw(opts)
    now_us = int(time.time() * 1_000_000)
    with RedisOnlineStore.open(opts, project="p") as store:
        store.write("t", [b"fresh", b"stale"], [v(now_us), v(now_us - 3_600_000_000)], ttl=timedelta(milliseconds=300))
        key = f"{opts.key_prefix}p/t\x00fresh".encode()
        assert 0 < client.pttl(key) <= 301
        assert store.read("t", [b"stale"]) == [None]  # already past event time + ttl: dropped at once
        store.write("t", [b"forever"], [v(now_us)])  # no ttl: no expiry
        assert client.pttl(f"{opts.key_prefix}p/t\x00forever".encode()) == -1
        time.sleep(0.4)
        assert store.read("t", [b"fresh", b"forever"]) == [None, v(now_us)]
        assert client.exists(key) == 0


def test_a_newer_write_moves_the_expiry_and_an_older_one_does_not(store: RedisOnlineStore) -> None:
    now_us = int(time.time() * 1_000_000)
    key = f"{store.options.key_prefix}p/t\x00k".encode()
    client = raw(store.options)
    store.write("t", [b"k"], [v(now_us)], ttl=timedelta(seconds=100))
    store.write("t", [b"k"], [v(now_us - 50_000_000)], ttl=timedelta(seconds=100))  # older: refused
    assert 99_000 < client.pttl(key) <= 100_001
    store.write("t", [b"k"], [v(now_us + 50_000_000)], ttl=timedelta(seconds=100))
    assert 149_000 < client.pttl(key) <= 150_001


def test_a_batch_larger_than_one_script_call_is_written_whole(store: RedisOnlineStore) -> None:
    keys = [i.to_bytes(4, "big") for i in range(5_000)]
    assert store.write("t", keys, [v(1)] * len(keys)) == len(keys)
    assert store.write("t", keys, [v(2)] * 2_500 + [v(0)] * 2_500) == 2_500
    assert store.read("t", keys) == [v(2)] * 2_500 + [v(1)] * 2_500
    assert store.prune("t", 2) == 2_500
    store.drop("t")
    assert store.read("t", keys[:3]) == [None, None, None]


def test_drop_and_prune_leave_glob_lookalike_tables_alone(tmp_path: Path) -> None:
    """Table names with glob characters are matched literally by SCAN."""
    with RedisOnlineStore.open(options(tmp_path), project="p") as store:
        for table in ("a*", "ab", "a?", "a[b]", "a\\"):
            store.write(table, [b"k"], [v(1)])
        store.drop("a*")
        assert store.prune("a?", 5) == 1
        assert [store.read(t, [b"k"])[0] for t in ("a*", "ab", "a?", "a[b]", "a\\")] == [None, v(1), None, v(1), v(1)]


def test_nothing_listening_is_backend_unavailable() -> None:
    port = harness.free_port()
    with pytest.raises(BackendUnavailable, match=rf"Redis server at redis://127.0.0.1:{port}/0 is unavailable"):
        RedisOnlineStore.open(RedisOptions(url=f"redis://127.0.0.1:{port}/0", connect_timeout_s=0.5), project="p")


def test_the_password_is_not_in_error_messages() -> None:
    port = harness.free_port()
    with pytest.raises(BackendUnavailable) as info:
        RedisOnlineStore.open(RedisOptions(url=f"redis://u:s3cret@127.0.0.1:{port}/0"), project="p")
    assert "s3cret" not in str(info.value)


def test_a_server_restart_is_unavailable_then_recovers() -> None:
    server = harness.new_server()
    try:
        store = RedisOnlineStore.open(
            RedisOptions(url=server.url, socket_timeout_s=1, connect_timeout_s=0.5), project="p"
        )
        store.write("t", [b"k"], [v(1)])
        server.stop()
        for call in (lambda: store.read("t", [b"k"]), lambda: store.write("t", [b"k"], [v(2)])):
            with pytest.raises(BackendUnavailable, match="unavailable"):
                call()
        with pytest.raises(BackendUnavailable):
            store.prune("t", 5)
        server.start()  # same port; an empty server (no persistence), so the script cache is empty too
        assert store.read("t", [b"k"]) == [None]
        assert store.write("t", [b"k"], [v(3)]) == 1
        assert store.read("t", [b"k"]) == [v(3)]
        assert store.prune("t", 5) == 1
        store.close()
    finally:
        server.stop()


def test_engine_errors_are_backend_failures(store: RedisOnlineStore) -> None:
    client = raw(store.options)
    client.execute_command("CONFIG", "SET", "maxmemory", "1")
    try:
        with pytest.raises(BackendFailure, match="out of memory"):
            store.write("t", [b"k"], [v(1, 0, b"x" * 1000)])
    finally:
        client.execute_command("CONFIG", "SET", "maxmemory", "0")
    assert store.write("t", [b"k"], [v(1)]) == 1


def test_a_full_server_refuses_a_batch_whole_and_prune_still_frees_room(store: RedisOnlineStore) -> None:
    client = raw(store.options)
    store.write("t", [b"old"], [v(1)])
    client.execute_command("CONFIG", "SET", "maxmemory", "1")
    try:
        with pytest.raises(BackendFailure, match="out of memory"):
            store.write("t", [b"a", b"b"], [v(1)] * 2)
        assert store.prune("t", 5) == 1
    finally:
        client.execute_command("CONFIG", "SET", "maxmemory", "0")
    assert store.read("t", [b"a", b"b", b"old"]) == [None, None, None]


def test_a_feature_store_on_redis_pushes_reads_and_expires_on_the_server(tmp_path: Path) -> None:
    """End to end: the view's ttl travels from `push` to the server, and reads decode what Redis holds."""
    write_default_config(tmp_path, "proj")
    opts = options(tmp_path)
    user = Entity("user", join_keys={"user_id": Int64})
    view = FeatureView("scores", entities=[user], schema=[Field("score", Float64)], ttl=timedelta(hours=1))
    now = datetime.now(UTC)
    with FeatureStore(tmp_path, online__type="redis", online__url=opts.url, online__key_prefix=opts.key_prefix) as fs:
        fs.apply([user, view])
        fs.push("scores", [{"user_id": 1, "event_timestamp": now - timedelta(minutes=10), "score": 0.5}])
        got = fs.get_online_features(["scores:score"], [{"user_id": 1}, {"user_id": 2}]).to_dict()
        assert got["score"] == [0.5, None]
    keys = raw(opts).keys(f"{opts.key_prefix}*".encode())
    assert len(keys) == 1
    assert 49 * 60_000 < raw(opts).pttl(keys[0]) <= 50 * 60_000 + 1
