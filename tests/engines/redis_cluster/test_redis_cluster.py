"""Redis Cluster behaviour: one entity's keys on one slot, keys spread over every node and
`drop`/`prune` reaching all of them, rule 4 across processes, expiry, and a node going away
and coming back. The shared contract lives in tests/contract/online.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

from engines.redis.test_redis import check_concurrent_writers
from strato.errors import BackendUnavailable
from strato.online.backends.redis import RedisClusterOnlineStore, RedisClusterOptions
from strato.online.codec import HEADER

from . import harness

pytestmark = pytest.mark.redis_cluster


def v(event: int, created: int = 0) -> bytes:
    return HEADER.pack(event, created)


def options(tmp_path: Path) -> RedisClusterOptions:
    return RedisClusterOptions(**harness.options(tmp_path))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with RedisClusterOnlineStore.open(options(tmp_path), project="p") as opened:
        yield opened


def test_defaults_name_a_cluster() -> None:
    assert RedisClusterOptions().cluster is True


def test_one_entity_shares_a_slot_across_views_and_keys_spread_over_every_node(store: RedisClusterOnlineStore) -> None:
    client = redis.cluster.RedisCluster.from_url(store.options.url)
    prefix = store.options.key_prefix
    keys = [i.to_bytes(8, "big") for i in range(300)]
    for table in ("user_stats__v1", "user_risk__v3"):
        store.write(table, keys, [v(1)] * len(keys))
    slots = {
        client.keyslot(f"{prefix}p/{table}\x00".encode() + b"{" + keys[7] + b"}")
        for table in ("user_stats__v1", "user_risk__v3")
    }
    assert len(slots) == 1
    per_node = [client.get_redis_connection(n).dbsize() for n in client.get_primaries()]
    assert len(per_node) == 3
    assert all(n > 0 for n in per_node)
    assert store.prune("user_stats__v1", 2) == len(keys)
    assert store.read("user_stats__v1", keys) == [None] * len(keys)
    assert store.read("user_risk__v3", keys) == [v(1)] * len(keys)
    store.drop("user_risk__v3")
    assert store.read("user_risk__v3", keys) == [None] * len(keys)
    client.close()


def test_concurrent_writer_processes_never_let_an_older_event_win(tmp_path: Path) -> None:
    check_concurrent_writers(options(tmp_path))


def test_native_ttl_expires_on_the_cluster(store: RedisClusterOnlineStore) -> None:
    now_us = int(time.time() * 1_000_000)
    store.write("t", [b"a", b"b"], [v(now_us)] * 2, ttl=timedelta(milliseconds=300))
    assert store.read("t", [b"a", b"b"]) == [v(now_us)] * 2
    time.sleep(0.4)
    assert store.read("t", [b"a", b"b"]) == [None, None]


def test_a_node_restart_is_unavailable_then_recovers() -> None:
    cluster = harness._redis.new_cluster()
    try:
        opts = RedisClusterOptions(url=cluster.url, socket_timeout_s=1, connect_timeout_s=0.5)
        store = RedisClusterOnlineStore.open(opts, project="p")
        keys = [i.to_bytes(8, "big") for i in range(100)]  # on every node
        store.write("t", keys, [v(1)] * len(keys))
        node = cluster.nodes[1]
        node.stop()
        with pytest.raises(BackendUnavailable, match="unavailable"):
            store.read("t", keys)
        with pytest.raises(BackendUnavailable):
            store.write("t", keys, [v(2)] * len(keys))
        node.start()  # the same port and nodes.conf: it rejoins with its slots, empty (no persistence)
        deadline = time.monotonic() + 30
        while True:
            try:
                values = store.read("t", keys)
                break
            except BackendUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert None in values
        assert v(1) in values or v(2) in values  # the other nodes kept theirs
        assert store.write("t", keys, [v(3)] * len(keys)) == len(keys)
        assert store.read("t", keys) == [v(3)] * len(keys)
        store.close()
    finally:
        cluster.stop()


def test_the_raw_cluster_client_sees_the_hash_tagged_layout(store: RedisClusterOnlineStore) -> None:
    store.write("t", [b"k"], [v(5)])
    client = redis.cluster.RedisCluster.from_url(store.options.url)
    assert client.get(f"{store.options.key_prefix}p/t\x00{{k}}".encode()) == v(5)
    client.close()


def test_compare_and_set_after_one_node_lost_its_scripts(store: RedisClusterOnlineStore) -> None:
    """A node that forgot the scripts (a restart, a failover) answers NOSCRIPT: only its calls are
    sent again, so keys on the other nodes, whose compare-and-set already ran, are not reported
    lost by a second run against their own new values."""
    keys = [i.to_bytes(8, "big") for i in range(200)]
    old = [HEADER.pack(1, 0) + k for k in keys]
    new = [HEADER.pack(2, 0) + k for k in keys]
    assert store.write_if("cas__v1", keys, [None] * len(keys), old) == [True] * len(keys)
    client = redis.cluster.RedisCluster.from_url(store.options.url)
    try:
        client.get_redis_connection(client.get_primaries()[0]).script_flush()
        assert store.write_if("cas__v1", keys, old, new) == [True] * len(keys)
        assert store.read("cas__v1", keys) == new
        assert store.write_if("cas__v1", keys, old, old) == [False] * len(keys)  # what it expected is gone
    finally:
        client.close()
