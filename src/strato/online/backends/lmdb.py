"""`LMDBOnlineStore`: the embedded default online backend, one LMDB environment on disk.

Why LMDB: reads are a memory-mapped B+tree lookup with no server and no copy until Python
asks for the bytes, so an in-process read costs little more than the engine's own
``txn.get``; writes are ACID transactions that several processes (a server, a stream
consumer, the CLI) may share safely.

Layout: every project and table lives in the one main database of the environment, each
key prefixed with ``b"<project>/<table>\\x00"``. A prefix keeps a table's keys contiguous
(drop is one range delete) and, unlike named sub-databases, leaves no per-process handle
that another process could invalidate by dropping the table.

LMDB refuses to open the same environment twice in one process, so stores opened on the
same path (two projects, two `FeatureStore` objects) share one environment, closed when
the last of them closes. Nor may an environment cross fork(): in a forked child, the
inherited stores and new opens of the same path raise a `BackendFailure` saying so.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import ClassVar, Self

import lmdb
from pydantic import Field, field_validator

from strato.errors import BackendFailure, BackendUnavailable, ConfigError
from strato.online.base import Capabilities, OnlineStore, StoreOptions, table_prefix
from strato.online.codec import HEADER, check_cas_batch, is_newer, newest_per_key

_GB = 1 << 30


class LMDBOptions(StoreOptions):
    """Where the LMDB environment lives and how it is opened."""

    path: str = ".strato/online"
    """Directory holding the environment (``data.mdb``, ``lock.mdb``); created if missing. Every project shares it."""

    map_size_gb: float = Field(default=64.0, gt=0)
    """Largest size the data file may reach, in GiB. Only address space is reserved: the file is sparse and grows with the data."""

    max_readers: int = Field(default=126, ge=1)
    """Most read transactions open at once across all processes using the path (about one per reading thread)."""

    sync: bool = True
    """Flush to disk on every commit. False is faster, but a machine crash may lose the last writes (rule 8 needs True)."""

    @field_validator("path")
    @classmethod
    def _local(cls, path: str) -> str:
        # Config keeps URIs as written; LMDB can only memory-map a local file, so say so here
        # rather than create a folder named "s3:" (a `file://` URI is a local path, though).
        if "://" in path:
            parsed = urllib.parse.urlsplit(path)
            if parsed.scheme == "file" and parsed.netloc in ("", "localhost") and parsed.path:
                return urllib.parse.unquote(parsed.path)
            raise ValueError(f"LMDB needs a local folder, not the URI {path!r}")
        return path


class _mapped_errors:
    """Turns `lmdb.Error` into `BackendUnavailable` (transient) or `BackendFailure` (terminal).

    A class rather than `contextlib.contextmanager`: it is entered on every read, and a
    stateless instance costs a fraction of a generator-based one.
    """

    __slots__ = ("map_size_gb", "max_readers", "path")

    def __init__(self, options: LMDBOptions):
        self.path = options.path
        self.map_size_gb = options.map_size_gb
        self.max_readers = options.max_readers

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or not isinstance(exc, lmdb.Error):
            return
        raise self.translate(exc) from exc

    def translate(self, exc: lmdb.Error) -> BackendUnavailable | BackendFailure:
        """The Strato error for an LMDB error: what happened, and what to do about it."""
        where = f"LMDB online store at {self.path}"
        if isinstance(exc, lmdb.ReadersFullError):
            return BackendUnavailable(
                f"{where}: all {self.max_readers} reader slots are in use; "
                "use fewer reading threads or processes, or raise online.max_readers"
            )
        if isinstance(exc, lmdb.MapResizedError):
            return BackendUnavailable(f"{where}: another process grew the map; reopen the store ({exc})")
        if isinstance(exc, lmdb.LockError):
            return BackendUnavailable(f"{where}: could not take a lock ({exc})")
        if isinstance(exc, lmdb.MapFullError):
            return BackendFailure(
                f"{where} is full (online.map_size_gb = {self.map_size_gb:g}); nothing of this write reached the online store. "
                "Raise online.map_size_gb: the file is sparse, so a large value costs no disk"
            )
        if isinstance(exc, lmdb.TxnFullError):
            return BackendFailure(
                f"{where}: one write touched more pages than an LMDB transaction holds; "
                "nothing reached the online store. Write fewer rows per call"
            )
        if isinstance(exc, lmdb.BadValsizeError):
            return BackendFailure(
                f"{where}: a key is longer than LMDB allows (511 bytes including the project and table "
                f"name); nothing reached the online store ({exc})"
            )
        return BackendFailure(f"{where}: {exc}")


@dataclass
class _SharedEnv:
    """One open environment of this process, and how many open stores use it."""

    env: lmdb.Environment
    options: LMDBOptions
    users: int


_ENVS: dict[str, _SharedEnv] = {}
_ENVS_LOCK = threading.Lock()
_STORES: weakref.WeakSet[LMDBOnlineStore] = weakref.WeakSet()
#: Environments a forked child inherited: never used, never closed (closing them would free
#: reader slots that belong to the parent), only kept alive so garbage collection cannot close them.
_INHERITED: dict[str, _SharedEnv] = {}


def _after_fork_in_child() -> None:
    """Disable every store inherited through fork(): LMDB forbids using an environment in a child."""
    global _ENVS_LOCK
    _ENVS_LOCK = threading.Lock()  # the parent may have held it while forking
    for store in list(_STORES):
        store._env = None
        store._forked = True
    _INHERITED.update(_ENVS)
    _ENVS.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _acquire(options: LMDBOptions) -> tuple[lmdb.Environment, LMDBOptions]:
    """The process's environment at `options.path`, opened on first use."""
    try:
        os.makedirs(options.path, exist_ok=True)
        real = os.path.realpath(options.path)
    except OSError as exc:
        raise BackendFailure(f"LMDB online store at {options.path}: cannot create the directory ({exc})") from exc
    options = options.model_copy(update={"path": real})
    with _ENVS_LOCK:
        if real in _INHERITED:
            raise BackendFailure(
                f"LMDB online store at {real}: this process was forked while the store was open, and an LMDB "
                "environment cannot cross fork(). Open the store only after forking (e.g. run gunicorn "
                "without --preload), or close it before forking"
            )
        shared = _ENVS.get(real)
        if shared is not None:
            if shared.options != options:
                raise ConfigError(
                    f"the LMDB online store at {real} is already open in this process with other options "
                    f"({shared.options.model_dump()}); open it with the same options"
                )
            shared.users += 1
            return shared.env, options
        with _mapped_errors(options):
            env = lmdb.open(
                real,
                map_size=int(options.map_size_gb * _GB),
                max_readers=options.max_readers,
                sync=options.sync,
                max_dbs=0,
                max_spare_txns=1,  # a read `begin` then renews a cached transaction: no allocation, no scan
                readahead=False,  # lookups are random: reading ahead only evicts useful pages
            )
        _ENVS[real] = _SharedEnv(env, options, 1)
        return env, options


def _resolve(prefix: bytes, keys: Sequence[bytes], values: Sequence[bytes]) -> dict[bytes, bytes]:
    """Full key → value (`codec.newest_per_key`), before the write transaction: a malformed
    batch then leaves nothing to undo."""
    return newest_per_key([prefix + key for key in keys], values)


def _release(path: str) -> None:
    with _ENVS_LOCK:
        shared = _ENVS[path]
        shared.users -= 1
        if shared.users == 0:
            del _ENVS[path]
            shared.env.close()


class LMDBOnlineStore(OnlineStore):
    """Latest values in an LMDB environment on local disk; safe across threads and processes."""

    name: ClassVar[str] = "lmdb"
    options_model: ClassVar[type[StoreOptions]] = LMDBOptions
    capabilities: ClassVar[Capabilities] = Capabilities(persistent=True, compare_and_set=True)

    def __init__(self, env: lmdb.Environment, options: LMDBOptions, project: str):
        if "\x00" in project:
            raise ValueError(f"project name {project!r} contains a NUL byte")
        self.project = project
        self.options = options
        self._env: lmdb.Environment | None = env
        self._errors = _mapped_errors(options)
        self._prefixes: dict[str, bytes] = {}
        self._forked = False
        _STORES.add(self)

    @classmethod
    def open(cls, options: StoreOptions, *, project: str) -> Self:
        if not isinstance(options, LMDBOptions):
            raise TypeError(f"LMDBOnlineStore.open needs LMDBOptions, got {type(options).__name__}")
        env, options = _acquire(options)
        return cls(env, options, project)

    def _live(self) -> lmdb.Environment:
        env = self._env
        if env is None:
            raise self._closed()
        return env

    def _closed(self) -> BackendFailure:
        where = f"the LMDB online store of project {self.project!r} at {self.options.path}"
        if self._forked:
            return BackendFailure(
                f"{where} was opened before this process forked, and an LMDB environment cannot cross fork(); "
                "open the store after forking"
            )
        return BackendFailure(f"{where} is closed")

    def _prefix(self, table: str) -> bytes:
        prefix = self._prefixes.get(table)
        if prefix is None:
            prefix = self._prefixes[table] = table_prefix(self.project, table)
        return prefix

    def write(self, table: str, keys: Sequence[bytes], values: Sequence[bytes], *, ttl: timedelta | None = None) -> int:
        if len(keys) != len(values):
            raise ValueError(f"write to {table!r}: {len(keys)} keys but {len(values)} values")
        env = self._live()
        prefix = self._prefix(table)
        batch = _resolve(prefix, keys, values)
        if not batch:
            return 0
        # buffers=True: stored values come back as views into the map, so comparing their
        # 16-byte headers copies nothing; each view is used before the next put invalidates it.
        with self._errors, env.begin(write=True, buffers=True) as txn:  # commits, or aborts on any exception
            cursor = txn.cursor()
            if not (cursor.set_range(prefix) and bytes(cursor.key()[: len(prefix)]) == prefix):
                # A new table (a first materialization): nothing to compare against. Sorted
                # keys appended past the last key fill pages instead of splitting them half full.
                items = sorted(batch.items())
                append = not cursor.last() or bytes(cursor.key()) < items[0][0]
                cursor.putmulti(items, append=append)
                return len(items)
            changed = 0
            get, put = txn.get, txn.put
            for key, value in batch.items():
                stored = get(key)
                if stored is None or is_newer(value, stored):
                    put(key, value)
                    changed += 1
            return changed

    def write_if(
        self, table: str, keys: Sequence[bytes], expected: Sequence[bytes | None], values: Sequence[bytes]
    ) -> list[bool]:
        env = self._live()
        prefix = self._prefix(table)
        items = [(prefix + key, old, value) for key, old, value in check_cas_batch(keys, expected, values)]
        won: list[bool] = []
        # One write transaction: LMDB admits one writer at a time across processes, so no
        # other write lands between a key's comparison and its put.
        with self._errors, env.begin(write=True) as txn:
            get, put = txn.get, txn.put
            for key, old, value in items:
                ok = get(key) == old
                if ok:
                    put(key, value)
                won.append(ok)
        return won

    def read(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        prefix = self._prefixes.get(table) or self._prefix(table)
        env = self._env
        if env is None:
            raise self._closed()
        # The hot path of every online lookup: try/except rather than `with self._errors`
        # (free unless an error happens), and no comprehension for the common single key.
        try:
            # A fresh snapshot per call sees every commit so far, from any process; with
            # max_spare_txns=1 `begin` merely renews a cached reader. begin/abort by hand
            # is measurably cheaper here than the transaction's own context manager.
            txn = env.begin()
            try:
                if len(keys) == 1:
                    return [txn.get(prefix + keys[0])]
                get = txn.get
                return [get(prefix + key) for key in keys]
            finally:
                txn.abort()
        except lmdb.Error as exc:
            raise self._errors.translate(exc) from exc

    def read_tables(self, requests: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[bytes | None]]:
        if len(requests) == 1:
            return [self.read(*requests[0])]
        env = self._env
        if env is None:
            raise self._closed()
        prefixes = [self._prefixes.get(table) or self._prefix(table) for table, _ in requests]
        try:
            txn = env.begin()  # one snapshot for every view of the lookup
            try:
                get = txn.get
                return [
                    [get(prefix + key) for key in keys] for prefix, (_, keys) in zip(prefixes, requests, strict=True)
                ]
            finally:
                txn.abort()
        except lmdb.Error as exc:
            raise self._errors.translate(exc) from exc

    def prune(self, table: str, older_than_us: int) -> int:
        env = self._live()
        prefix = self._prefix(table)
        pruned = 0
        # One write transaction: LMDB has one writer at a time, so no write can land between
        # reading a value's event time and deleting it.
        with self._errors, env.begin(write=True, buffers=True) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(prefix)
            while found and bytes(cursor.key()[: len(prefix)]) == prefix:
                if HEADER.unpack_from(cursor.value())[0] < older_than_us:  # event time
                    found = cursor.delete()  # moves to the next item
                    pruned += 1
                else:
                    found = cursor.next()
        return pruned

    def drop(self, table: str) -> None:
        prefix = self._prefix(table)
        with self._errors, self._live().begin(write=True) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                while cursor.key().startswith(prefix) and cursor.delete():
                    pass

    def key_limit(self, table: str) -> int | None:
        return int(self._live().max_key_size()) - len(self._prefix(table))

    def check_room(self, table: str, approx_bytes: int) -> None:
        env = self._live()
        with self._errors:
            info, page = env.info(), env.stat()["psize"]
        used = (info["last_pgno"] + 1) * page
        # Copy-on-write B+tree: a write needs fresh pages for what it touches, about twice the
        # data once page fill and the tree's inner pages are counted, plus a margin.
        needed = 2 * approx_bytes + 64 * page
        if used + needed > info["map_size"]:
            free = max(info["map_size"] - used, 0)
            raise BackendFailure(
                f"LMDB online store at {self.options.path} has about {free / 2**20:,.1f} MiB free of "
                f"online.map_size_gb = {self.options.map_size_gb:g}, and this write needs about "
                f"{needed / 2**20:,.1f} MiB; nothing was written. Raise online.map_size_gb: the file is "
                "sparse, so a large value costs no disk"
            )

    def check(self) -> list[str]:
        problems = super().check()
        path = self.options.path
        if not os.access(path, os.W_OK | os.X_OK):
            problems.append(f"{path} is not writable by this user; writes and materialization will fail")
        env = self._live()
        with self._errors:
            info, page = env.info(), env.stat()["psize"]
        used = (info["last_pgno"] + 1) * page
        free = info["map_size"] - used
        # Under 10% free, or under the margin `check_room` keeps (then every write is refused).
        if free < max(0.1 * info["map_size"], 64 * page):
            problems.append(
                f"{path} has {max(free, 0) / 2**20:,.1f} MiB free of online.map_size_gb = {self.options.map_size_gb:g}; "
                "raise online.map_size_gb (the file is sparse, a large value costs no disk)"
            )
        return problems

    def close(self) -> None:
        if self._env is not None:
            self._env = None
            _release(self.options.path)
