"""The online-store seam: one narrow interface every key-value backend implements.

A backend only moves bytes. `online.codec` turns validated Arrow rows into (key, value)
pairs and back, so every backend stores the same layout and decodes nothing itself. The
one piece of logic a backend owns is design rule 4: on write, keep per key the value whose
header (event time, then write time) is newer — `codec.is_newer` decides, and the backend
applies it atomically inside its own transaction (LMDB write txn, Redis Lua script, …).

Beside it, `write_if` is a compare-and-set for callers that keep read-merge-write rows (the
windowed-aggregation tiles): it writes a key only if its stored bytes are still exactly what
the caller read, decided on the server, so writers on several machines never lose each
other's merges. Backends that can offer it declare `Capabilities.compare_and_set`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

DOCTOR_TABLE = "strato_doctor"
"""The table `OnlineStore.check` reads from: no view's storage has this name (they end in ``__vN``)."""


def table_prefix(project: str, table: str, head: str = "") -> bytes:
    """The bytes every key of `table` starts with in a flat keyspace (LMDB, Redis): ``{head}{project}/{table}\\x00``.

    A NUL ends the table name and "/" ends the project, so no table's prefix is another's
    prefix, and a table's keys are one contiguous range (drop and prune are range scans).
    """
    if "/" in table or "\x00" in table:
        raise ValueError(f"table name {table!r} may not contain '/' or NUL")
    return f"{head}{project}/{table}\x00".encode()


class StoreOptions(BaseModel):
    """Base of every backend's options model; unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, read by the core and by the contract tests alike."""

    #: The engine expires keys itself (values are still checked against ttl on read).
    native_ttl: bool = False
    #: Data survives `close()` and a new `open()` with the same options.
    persistent: bool = False
    #: Largest number of keys one `write` or `read` call should carry.
    max_batch_rows: int = 1_000_000
    #: Calls cross the network, so one can hang on a slow or stopped server: the feature server
    #: runs its reads off the event loop under `server.backend_timeout_s`. An embedded store
    #: (LMDB, memory) answers from local memory and is read inline, the fast path.
    remote: bool = False
    #: `write_if` is implemented: a per-key compare-and-set decided atomically by the engine, so
    #: read-merge-write callers on any number of machines never lose each other's updates.
    compare_and_set: bool = False


class OnlineStore(abc.ABC):
    """Latest feature values per (table, key), as opaque bytes laid out by `online.codec`.

    `table` is a view version's storage name (``user_stats__v1``); a backend namespaces
    keys by project and table so that projects and view versions never see each other.
    """

    name: ClassVar[str]
    options_model: ClassVar[type[StoreOptions]]
    capabilities: ClassVar[Capabilities]

    @classmethod
    @abc.abstractmethod
    def open(cls, options: StoreOptions, *, project: str) -> Self:
        """Connect to (or create) the store for `project`."""

    @abc.abstractmethod
    def write(self, table: str, keys: Sequence[bytes], values: Sequence[bytes], *, ttl: timedelta | None = None) -> int:
        """Upsert `values[i]` under `keys[i]` unless the stored value is newer (rule 4).

        The whole batch is one transaction: on error nothing is written. Later items win
        over earlier ones with the same key and header. Returns how many keys changed.
        `ttl` is the view's: a backend with `native_ttl` expires each value at its event time
        plus `ttl` on the server; the others ignore it (reads check expiry either way).
        """

    def write_if(
        self, table: str, keys: Sequence[bytes], expected: Sequence[bytes | None], values: Sequence[bytes]
    ) -> list[bool]:
        """Per key, store `values[i]` only if the stored value is still exactly `expected[i]`.

        `expected[i]` None means "the key must be absent". Each key's comparison and write are
        one atomic step on the engine (a Lua script, a filter expression under the record lock,
        one LMDB write transaction, the memory store's lock), so of several writers racing on a
        key from any number of processes or machines, exactly one wins each round and the others
        learn that they lost: the result says, per key, whether its value was written. The
        comparison is of the whole value, byte for byte; rule 4 is not applied (the caller
        derived `values[i]` from `expected[i]`), and nothing written here ever expires on the
        server. Keys must be distinct (`ValueError` otherwise), and the batch is checked in full
        (bytes keys, encoded values, lengths) before anything is sent. Backends that lack it keep
        this default and leave `Capabilities.compare_and_set` off.
        """
        raise NotImplementedError(f"{type(self).__name__} has no compare-and-set (Capabilities.compare_and_set)")

    @abc.abstractmethod
    def read(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """The stored value for each key, or None where absent; one engine round trip."""

    def read_tables(self, requests: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[bytes | None]]:
        """`read` of several tables at once: per (table, keys) request, the values in order.

        A lookup of features from several views asks for one entity in each: backends that can
        answer every request in one round trip (one MGET, one pipeline per node, one batch
        read, one snapshot) override this, so a request costs one trip, not one per view.
        """
        return [self.read(table, keys) for table, keys in requests]

    @abc.abstractmethod
    def prune(self, table: str, older_than_us: int) -> int:
        """Delete the values of `table` whose event time is before `older_than_us`; how many.

        Reads already treat such values as expired (rule 4); pruning frees their space. It
        runs in one transaction per call, so a concurrent newer write is never deleted.
        """

    @abc.abstractmethod
    def drop(self, table: str) -> None:
        """Remove every key of `table`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections and files; the object is unusable afterwards."""

    def key_limit(self, table: str) -> int | None:
        """The longest key (bytes, as `codec` encodes it) this backend stores in `table`; None: no limit.

        Writes check it while validating, before history is committed, so an over-long key
        is refused with nothing written rather than failing between the two stores.
        """
        return None

    def check_room(self, table: str, approx_bytes: int) -> None:
        """Raise a `BackendFailure` now if a write of about `approx_bytes` cannot fit.

        Called before history is committed; a backend with bounded space (LMDB's map)
        answers from its own accounting. The default: room is the engine's to manage.
        """
        return None

    def check(self) -> list[str]:
        """What is wrong with this store's setup, one sentence each (empty: nothing), for `strato doctor`.

        Opening already proved the engine reachable; this proves it answers. The default reads
        a key no view ever writes; a backend that can say more (space left, permissions, the
        server's own health) adds its own findings. Engine errors propagate as `BackendError`s.
        """
        self.read(DOCTOR_TABLE, [b"strato-doctor-probe"])
        return []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
