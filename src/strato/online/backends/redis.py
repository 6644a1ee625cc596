"""`RedisOnlineStore`: the networked online backend, on one Redis server or a Redis Cluster.

Why Redis: many hosts (feature servers, stream consumers, batch jobs) share one online
store with sub-millisecond reads, and the server can expire values itself.

Layout: the same as LMDB's, under an optional `key_prefix`: every value lives at
``<key_prefix><project>/<table>\\x00<key bytes>``. A NUL ends the table and ``/`` the
project, so no table's prefix is another's, and `drop`/`prune` find a table's keys with
one ``SCAN MATCH <prefix>*``. On a cluster the key bytes are wrapped in a hash tag,
``...\\x00{<key bytes>}``, so one entity's values in every view share a slot (one node):
a request for one entity is one round trip.

Design rule 4 holds on the server, not only in the writing process: every write goes
through a Lua script (cached by EVALSHA) that, per key, compares the stored 16-byte header
(event time, then write time) with the new one and only SETs if the new one is not older.
The script runs atomically, so writers in other processes or on other hosts can never let
an older event replace a newer one. With the view's ttl, the same script sets the key to
expire at event time + ttl (``SET ... PXAT``); reads still check expiry (rule 4).
"""

from __future__ import annotations

import struct
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import redis
import redis.cluster
from pydantic import Field, field_validator
from redis.commands.core import Script
from redis.crc import key_slot

from strato.errors import BackendFailure, BackendUnavailable
from strato.online.base import Capabilities, OnlineStore, StoreOptions, table_prefix
from strato.online.codec import HEADER, check_cas_batch, newest_per_key

#: Lua: is the 8-byte little-endian signed integer at a[i..i+7] >= the one at b[j..j+7]?
#: Compared byte by byte from the most significant (Lua numbers are doubles: unpacking
#: an int64 into one would round large values).
_LUA_GE: Final = """
local function ge(a, i, b, j)
  for k = 7, 0, -1 do
    local x, y = string.byte(a, i + k), string.byte(b, j + k)
    if k == 7 then
      if x >= 128 then x = x - 256 end
      if y >= 128 then y = y - 256 end
    end
    if x ~= y then return x > y end
  end
  return true
end
local function newer(new, old)
  if string.len(old) < 16 then return true end
  if not ge(new, 1, old, 1) then return false end
  if not ge(old, 1, new, 1) then return true end
  return ge(new, 9, old, 9)
end
"""

#: KEYS: full keys. ARGV: value, expire-at ms ("0": none) per key. Returns how many changed.
#: The shebang makes Redis (7+) refuse the whole script up front when out of memory, rather
#: than fail at a SET half-way through: of a batch, nothing is written, or all.
_WRITE: Final = (
    "#!lua"
    + _LUA_GE
    + """
local changed = 0
for n = 1, #KEYS do
  local value, at = ARGV[2 * n - 1], ARGV[2 * n]
  local old = redis.call('GET', KEYS[n])
  if not old or newer(value, old) then
    if at == '0' then
      redis.call('SET', KEYS[n], value)
    else
      redis.call('SET', KEYS[n], value, 'PXAT', at)
    end
    changed = changed + 1
  end
end
return changed
"""
)

#: KEYS: full keys. ARGV: per key "0" (must be absent) or "1", the expected value, the new
#: value. Per key, SET only if the stored bytes equal the expected ones (a whole-value
#: comparison: exact, whatever the values hold); returns 1 (written) or 0 per key. Atomic, as
#: every script is, so no other client's write falls between a comparison and its SET.
_WRITE_IF: Final = """#!lua
local won = {}
for n = 1, #KEYS do
  local present, expected = ARGV[3 * n - 2], ARGV[3 * n - 1]
  local stored = redis.call('GET', KEYS[n])
  local same
  if present == '0' then same = not stored else same = (stored == expected) end
  if same then
    redis.call('SET', KEYS[n], ARGV[3 * n])
    won[n] = 1
  else
    won[n] = 0
  end
end
return won
"""

#: KEYS: full keys. ARGV[1]: the cut, 8 bytes little-endian. Deletes values with event time < cut.
#: allow-oom: deleting is how a full server gets room back.
_PRUNE: Final = (
    "#!lua flags=allow-oom"
    + _LUA_GE
    + """
local pruned = 0
for n = 1, #KEYS do
  local old = redis.call('GET', KEYS[n])
  if old and string.len(old) >= 8 and not ge(old, 1, ARGV[1], 1) then
    redis.call('DEL', KEYS[n])
    pruned = pruned + 1
  end
end
return pruned
"""
)

_CUT: Final = struct.Struct("<q")
#: Keys per script call: bounds the time one call holds the (single-threaded) server.
_CHUNK: Final = 2_000
_SCAN_COUNT: Final = 1_000
_GLOB_SPECIAL: Final = frozenset(b"*?[]\\")


class RedisOptions(StoreOptions):
    """Which Redis server or cluster holds the online store, and how the client connects."""

    url: str = "redis://localhost:6379/0"
    """Server address, ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS). On a cluster, any one node."""

    cluster: bool = False
    """The url is a node of a Redis Cluster: keys are spread over its nodes (one hash slot per entity)."""

    key_prefix: str = ""
    """Prepended to every key, so several Strato installations (or other applications) can share one server."""

    socket_timeout_s: float = Field(default=5.0, gt=0)
    """Longest wait for a reply, in seconds; past it the call fails with `BackendUnavailable`."""

    connect_timeout_s: float = Field(default=2.0, gt=0)
    """Longest wait for a connection to open, in seconds."""

    max_connections: int = Field(default=64, ge=1)
    """Most connections the pool opens (per node on a cluster); about one per concurrently reading thread."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"a Redis url starts with redis://, rediss:// or unix://, not {url!r}")
        return url


class RedisClusterOptions(RedisOptions):
    """The options of `RedisOptions`, with `cluster` on: the url names any node of a Redis Cluster."""

    url: str = "redis://localhost:7000"
    """Any one node of the cluster, ``redis://[user:password@]host:port``; the client discovers the others."""

    cluster: bool = True
    """Keys are spread over the cluster's nodes, one hash slot per entity (False: treat the url as one server)."""


def _glob_escape(raw: bytes) -> bytes:
    """`raw` as a literal in a Redis glob pattern."""
    return b"".join(b"\\" + bytes([c]) if c in _GLOB_SPECIAL else bytes([c]) for c in raw)


def _expire_at_ms(value: bytes, ttl_us: int | None) -> int:
    """When the server should drop `value`: just after event time + ttl (0: never).

    A value exactly `ttl` old is still fresh (rule 4), hence the next millisecond.
    """
    if ttl_us is None:
        return 0
    return max(int(HEADER.unpack_from(value)[0] + ttl_us) // 1000 + 1, 1)


class RedisOnlineStore(OnlineStore):
    """Latest values on a Redis server or cluster; safe across threads, processes and hosts."""

    name: ClassVar[str] = "redis"
    options_model: ClassVar[type[StoreOptions]] = RedisOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_ttl=True, persistent=True, max_batch_rows=100_000, remote=True, compare_and_set=True
    )

    def __init__(self, client: Any, options: RedisOptions, project: str):
        if "\x00" in project:
            raise ValueError(f"project name {project!r} contains a NUL byte")
        self.project = project
        self.options = options
        # Any: redis-py's annotations are partial (untyped cluster methods, bytes | str replies).
        self._client: Any = client
        self._cluster = options.cluster
        self._write_script: Script = client.register_script(_WRITE)
        self._prune_script: Script = client.register_script(_PRUNE)
        self._write_if_script: Script = client.register_script(_WRITE_IF)
        self._prefixes: dict[str, bytes] = {}
        self._where = f"Redis {'cluster' if options.cluster else 'server'} at {_safe_url(options.url)}"

    @classmethod
    def open(cls, options: StoreOptions, *, project: str) -> Self:
        if not isinstance(options, RedisOptions):
            raise TypeError(f"RedisOnlineStore.open needs RedisOptions, got {type(options).__name__}")
        return cls(_acquire(options), options, project)

    def _live(self) -> Any:
        client = self._client
        if client is None:
            raise self._closed()
        return client

    def _closed(self) -> BackendFailure:
        return BackendFailure(f"the Redis online store of project {self.project!r} ({self._where}) is closed")

    def _prefix(self, table: str) -> bytes:
        prefix = self._prefixes.get(table)
        if prefix is None:
            prefix = self._prefixes[table] = table_prefix(self.project, table, self.options.key_prefix)
        return prefix

    def _full(self, prefix: bytes, key: bytes) -> bytes:
        if not isinstance(key, bytes):
            raise TypeError(f"key {key!r:.40} is not bytes")
        return prefix + b"{" + key + b"}" if self._cluster else prefix + key

    def write(self, table: str, keys: Sequence[bytes], values: Sequence[bytes], *, ttl: timedelta | None = None) -> int:
        if len(keys) != len(values):
            raise ValueError(f"write to {table!r}: {len(keys)} keys but {len(values)} values")
        client = self._live()
        prefix = self._prefix(table)
        batch = newest_per_key([self._full(prefix, key) for key in keys], values)  # checked before sending
        if not batch:
            return 0
        ttl_us = None if ttl is None else ttl // timedelta(microseconds=1)
        with _Errors(self._where):
            if self._cluster:
                return self._write_cluster(client, batch, ttl_us)
            items = list(batch.items())
            if len(items) <= _CHUNK:
                return int(self._write_script(keys=[k for k, _ in items], args=_args(items, ttl_us), client=client))
            # MULTI/EXEC: the chunks run back to back, no other client's command in between.
            pipe = client.pipeline(transaction=True)
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                self._write_script(keys=[k for k, _ in chunk], args=_args(chunk, ttl_us), client=pipe)
            return sum(int(n) for n in pipe.execute())

    def _write_cluster(self, client: Any, batch: dict[bytes, bytes], ttl_us: int | None) -> int:
        """One script call per hash slot (a script may only touch one slot), pipelined per node.

        Not one transaction across nodes (Redis Cluster has none); each slot's keys are.
        """
        by_slot: defaultdict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for item in batch.items():
            by_slot[client.keyslot(item[0])].append(item)
        calls = [([k for k, _ in items], _args(items, ttl_us)) for items in by_slot.values()]
        return _run_on_cluster(client, self._write_script, calls)

    def write_if(
        self, table: str, keys: Sequence[bytes], expected: Sequence[bytes | None], values: Sequence[bytes]
    ) -> list[bool]:
        client = self._live()
        prefix = self._prefix(table)
        items = [(self._full(prefix, k), old, v) for k, old, v in check_cas_batch(keys, expected, values)]
        if not items:
            return []
        script = self._write_if_script
        with _Errors(self._where):
            if self._cluster:
                # One script call per hash slot (a script touches one slot), pipelined per node.
                by_slot: defaultdict[int, list[int]] = defaultdict(list)
                for i, item in enumerate(items):
                    by_slot[client.keyslot(item[0])].append(i)
                groups = list(by_slot.values())
                calls = [([items[i][0] for i in group], _cas_args([items[i] for i in group])) for group in groups]
                replies = _replies_on_cluster(client, script, calls)
            else:
                groups = [list(range(start, min(start + _CHUNK, len(items)))) for start in range(0, len(items), _CHUNK)]
                if len(groups) == 1:
                    replies = [script(keys=[k for k, _, _ in items], args=_cas_args(items), client=client)]
                else:
                    pipe = client.pipeline(transaction=True)
                    for group in groups:
                        chunk = [items[i] for i in group]
                        script(keys=[k for k, _, _ in chunk], args=_cas_args(chunk), client=pipe)
                    replies = pipe.execute()
        won = [False] * len(items)
        for group, reply in zip(groups, replies, strict=True):
            for i, flag in zip(group, reply, strict=True):
                won[i] = int(flag) == 1
        return won

    def read(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        prefix = self._prefixes.get(table) or self._prefix(table)
        client = self._client
        if client is None:
            raise self._closed()
        try:
            if self._cluster:
                if len(keys) == 1:
                    return [client.get(prefix + b"{" + keys[0] + b"}")]
                return _read_cluster(client, [prefix + b"{" + key + b"}" for key in keys])
            if len(keys) == 1:
                return [client.get(prefix + keys[0])]
            if not keys:
                return []
            return list(client.mget([prefix + key for key in keys]))
        except redis.RedisError as exc:
            raise _translate(self._where, exc) from exc

    def read_tables(self, requests: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[bytes | None]]:
        if len(requests) == 1:
            return [self.read(*requests[0])]
        client = self._client
        if client is None:
            raise self._closed()
        full: list[bytes] = []
        for table, keys in requests:
            prefix = self._prefixes.get(table) or self._prefix(table)
            if self._cluster:  # one entity's keys share a hash tag: one node, one round trip
                full.extend(prefix + b"{" + key + b"}" for key in keys)
            else:
                full.extend(prefix + key for key in keys)
        if not full:
            return [[] for _ in requests]
        try:
            values = _read_cluster(client, full) if self._cluster else list(client.mget(full))
        except redis.RedisError as exc:
            raise _translate(self._where, exc) from exc
        out, at = [], 0
        for _, keys in requests:
            out.append(values[at : at + len(keys)])
            at += len(keys)
        return out

    def check(self) -> list[str]:
        problems = super().check()
        client = self._live()
        try:
            client.ping()
            if not self._cluster:
                answer = {
                    (k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else str(v))
                    for k, v in client.config_get("maxmemory-policy").items()
                }
                policy = answer.get("maxmemory-policy", "")
                if policy.startswith("allkeys-"):
                    problems.append(
                        f"{self._where} evicts any key when full (maxmemory-policy {policy}); online values "
                        "may vanish before their ttl: use noeviction or a volatile-* policy"
                    )
        except redis.ResponseError:
            pass  # CONFIG is often disabled on managed servers: nothing more to learn
        except redis.RedisError as exc:
            raise _translate(self._where, exc) from exc
        return problems

    def _scan(self, client: Any, prefix: bytes) -> Iterator[list[bytes]]:
        """Every key of the table whose prefix is `prefix` (on every primary of a cluster), in batches."""
        pattern = _glob_escape(prefix) + b"*"
        # A cluster node's own client: SCAN walks one node's keyspace.
        nodes = [client.get_redis_connection(n) for n in client.get_primaries()] if self._cluster else [client]
        for node in nodes:
            cursor = 0
            while True:
                cursor, found = node.scan(cursor, match=pattern, count=_SCAN_COUNT)
                if found:
                    yield list(found)
                if cursor == 0:
                    break

    def prune(self, table: str, older_than_us: int) -> int:
        client = self._live()
        prefix = self._prefix(table)
        cut = _CUT.pack(older_than_us)
        pruned = 0
        # The script reads each value's event time and deletes it in one atomic step, so a
        # newer value written after the scan is never deleted.
        with _Errors(self._where):
            for found in self._scan(client, prefix):
                if self._cluster:
                    pruned += _run_on_cluster(client, self._prune_script, [([key], [cut]) for key in found])
                else:
                    pruned += int(self._prune_script(keys=found, args=[cut], client=client))
        return pruned

    def drop(self, table: str) -> None:
        client = self._live()
        prefix = self._prefix(table)
        with _Errors(self._where):
            for found in self._scan(client, prefix):
                if self._cluster:
                    client.delete(*found)  # redis-py splits a multi-key DEL by slot
                else:
                    client.unlink(*found)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _release(self.options)


class RedisClusterOnlineStore(RedisOnlineStore):
    """`RedisOnlineStore` on a Redis Cluster: ``type: redis_cluster`` is ``type: redis`` with ``cluster: true``."""

    name: ClassVar[str] = "redis_cluster"
    options_model: ClassVar[type[StoreOptions]] = RedisClusterOptions


#: One client (one connection pool) per server and connection options in this process, shared
#: by every store opened on it, whatever its project or key prefix: opening a store is then
#: cheap (a cluster client discovers the nodes and loads the scripts once), and a process
#: keeps one pool per server. redis-py pools notice a fork and reconnect in the child.
_CLIENTS: dict[tuple[Any, ...], list[Any]] = {}
_CLIENTS_LOCK = threading.Lock()


def _client_key(options: RedisOptions) -> tuple[Any, ...]:
    o = options
    return (o.url, o.cluster, o.socket_timeout_s, o.connect_timeout_s, o.max_connections)


def _acquire(options: RedisOptions) -> Any:
    """The process's client for `options`' server, connected on first use."""
    key = _client_key(options)
    with _CLIENTS_LOCK:
        shared = _CLIENTS.get(key)
        if shared is not None:
            shared[1] += 1
            return shared[0]
        where = f"Redis {'cluster' if options.cluster else 'server'} at {_safe_url(options.url)}"
        common: dict[str, Any] = {
            "socket_timeout": options.socket_timeout_s,
            "socket_connect_timeout": options.connect_timeout_s,
            "max_connections": options.max_connections,
        }
        client: Any
        try:
            if options.cluster:
                client = redis.cluster.RedisCluster.from_url(options.url, **common)
                # Every primary has both scripts before the first pipelined EVALSHA.
                client.script_load(_WRITE)
                client.script_load(_PRUNE)
                client.script_load(_WRITE_IF)
            else:
                client = redis.Redis.from_url(options.url, **common)
                client.ping()  # fail now, naming the server, rather than on the first read
        except redis.RedisError as exc:
            raise _translate(where, exc) from exc
        except ValueError as exc:
            raise BackendFailure(f"{where}: {exc}") from exc
        _CLIENTS[key] = [client, 1]
        return client


def _release(options: RedisOptions) -> None:
    key = _client_key(options)
    with _CLIENTS_LOCK:
        shared = _CLIENTS[key]
        shared[1] -= 1
        if shared[1] == 0:
            del _CLIENTS[key]
            shared[0].close()


def _read_cluster(client: Any, full_keys: list[bytes]) -> list[bytes | None]:
    """GET every key on a cluster: one pipeline per node, every pipeline sent before any reply is read.

    So a batch costs about one round trip, not one per node. Within a node, the keys of one
    hash slot go in one MGET (one entity's keys in every view share a slot: a lookup of many
    entities sends one MGET per entity, not one GET per value). Slots are looked up in the
    client's map of the cluster; when the map is out of date (a slot moved, a node failed
    over) or a node is unreachable, redis-py's own grouped MGET redoes the read, following
    redirections and refreshing the map, or raises.
    """
    nodes = client.nodes_manager
    groups: dict[str, tuple[Any, dict[int, list[int]]]] = {}
    for i, key in enumerate(full_keys):
        slot = key_slot(key)
        node = nodes.get_node_from_slot(slot)
        groups.setdefault(node.name, (node, {}))[1].setdefault(slot, []).append(i)
    out: list[bytes | None] = [None] * len(full_keys)
    taken: list[tuple[Any, Any, list[list[int]]]] = []
    healthy = False
    try:
        for node, slots in groups.values():
            pool = node.redis_connection.connection_pool
            conn = pool.get_connection()
            runs = list(slots.values())
            taken.append((pool, conn, runs))
            conn.send_packed_command(conn.pack_commands([("MGET", *(full_keys[i] for i in run)) for run in runs]))
        for _, conn, runs in taken:
            for run in runs:
                for i, value in zip(run, conn.read_response(), strict=True):
                    out[i] = value
        healthy = True
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        pass
    finally:
        for pool, conn, _ in taken:
            if not healthy:
                conn.disconnect()  # replies may be left unread on it
            pool.release(conn)
    if healthy:
        return out
    return list(client.mget_nonatomic(full_keys))


def _run_on_cluster(client: Any, script: Script, calls: Sequence[tuple[list[bytes], list[Any]]]) -> int:
    """Run `script` once per (keys, args) call, pipelined per node; the sum of the replies."""
    return sum(int(n) for n in _replies_on_cluster(client, script, calls))


def _replies_on_cluster(client: Any, script: Script, calls: Sequence[tuple[list[bytes], list[Any]]]) -> list[Any]:
    """Run `script` once per (keys, args) call, pipelined per node; the replies in call order.

    A node that lost its script cache (a restart, a failover to a fresh replica) answers
    NOSCRIPT: load the script everywhere and run again exactly the calls that answered so
    (an EVALSHA that answers NOSCRIPT ran nothing). The calls that ran are never rerun, so a
    compare-and-set that won is never reported as lost by its own second attempt.
    """
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in (1, 2):
        pipe = client.pipeline()
        for i in todo:
            keys, args = calls[i]
            pipe.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, *args
            )  # evalsha() is blocked on a cluster pipeline
        answers = pipe.execute(raise_on_error=False)
        missing = []
        for i, answer in zip(todo, answers, strict=True):
            if isinstance(answer, redis.exceptions.NoScriptError) and attempt == 1:
                missing.append(i)
            elif isinstance(answer, Exception):
                raise answer
            else:
                replies[i] = answer
        if not missing:
            return replies
        client.script_load(script.script)
        todo = missing
    raise AssertionError("unreachable")


def _args(items: Sequence[tuple[bytes, bytes]], ttl_us: int | None) -> list[bytes | int]:
    args: list[bytes | int] = []
    for _, value in items:
        args.append(value)
        args.append(_expire_at_ms(value, ttl_us))
    return args


def _cas_args(items: Sequence[tuple[bytes, bytes | None, bytes]]) -> list[bytes]:
    args: list[bytes] = []
    for _, old, value in items:
        args += (b"0", b"") if old is None else (b"1", old)
        args.append(value)
    return args


def _safe_url(url: str) -> str:
    """The url without its password: error messages end up in logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _translate(where: str, exc: redis.RedisError) -> BackendUnavailable | BackendFailure:
    """Connection trouble (down, restarting, failing over, timing out) is transient; the rest is not."""
    transient = (
        redis.ConnectionError,
        redis.TimeoutError,
        redis.exceptions.BusyLoadingError,
        redis.exceptions.TryAgainError,
        redis.exceptions.ClusterDownError,
        redis.exceptions.ClusterError,
        redis.exceptions.MasterDownError,
    )
    if isinstance(exc, transient):
        return BackendUnavailable(f"{where} is unavailable ({type(exc).__name__}: {exc}); retry when it is back")
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return BackendUnavailable(f"{where}: the node is a read-only replica, likely failing over ({exc})")
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or (
        isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("OOM")
    ):
        return BackendFailure(f"{where} is out of memory (maxmemory); nothing of this write reached it ({exc})")
    return BackendFailure(f"{where}: {type(exc).__name__}: {exc}")


class _Errors:
    """Maps `redis.RedisError` to Strato's backend errors; caller bugs pass through unchanged."""

    __slots__ = ("where",)

    def __init__(self, where: str):
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, redis.RedisError):
            raise _translate(self.where, exc) from exc
