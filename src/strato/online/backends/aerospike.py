"""`AerospikeOnlineStore`: latest values on an Aerospike cluster, for teams past one machine.

Layout: one record per (view table, entity key), in one set per (project, table). The
record's user key is the entity key bytes, as a blob (only its digest travels and is stored); the
whole encoded value sits in one blob bin ``v`` — Aerospike's cost is per bin, so one packed
bin reads markedly faster than a bin per feature — and the value's header is repeated in two
integer bins, ``ev`` (event time, µs) and ``cr`` (write time, µs), which the server compares.

Design rule 4 is enforced on the server: every write carries a filter expression "the
record is absent, or its (ev, cr) is not greater than mine". Aerospike evaluates it and
applies the write under the record lock, so concurrent writers in any number of processes
never let an older value replace a newer one, with one round trip per batch and no retry
loop. A rejected write comes back as ``FILTERED_OUT`` and is simply not counted.

Native TTL: with a view ttl, a record expires at event time + ttl (server clock); a value
already past that is not written at all. Reads still check expiry from the event time.

Aerospike Community Edition has no multi-record transactions: a batch is validated in full
before anything is sent (malformed items write nothing), but an engine failure part-way
through a batch may leave some records written. Rule 4 makes the retry of the same batch
converge to the same state, so `BackendUnavailable` means "retry", not "repair".
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Final, Self, TypeVar

import aerospike
from aerospike import exception as aex
from aerospike_helpers import expressions as exp  # type: ignore[import-untyped]
from aerospike_helpers.batch import records as br  # type: ignore[import-untyped]
from aerospike_helpers.operations import operations as ops  # type: ignore[import-untyped]
from pydantic import Field, field_validator

from strato.errors import BackendFailure, BackendUnavailable
from strato.online.base import Capabilities, OnlineStore, StoreOptions
from strato.online.codec import HEADER, check_cas_batch, newest_per_key

VALUE_BIN: Final = "v"
EVENT_BIN: Final = "ev"
CREATED_BIN: Final = "cr"
SET_NAME_MAX: Final = 63
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9_\-]+")
_FILTERED_OUT: Final = 27
_NOT_FOUND: Final = 2
_EXISTS: Final = 5
_CHUNK: Final = 5_000
_MAX_TTL_S: Final = 10 * 365 * 86_400  # the server's max-ttl: ten years
_US: Final = 1_000_000
_T = TypeVar("_T")
#: Client exceptions that mean "retry later" (looked up by name: the client's stubs lack some).
_UNREACHABLE_ERRORS: Final = tuple(
    getattr(aex, name) for name in ("TimeoutError", "ConnectionError", "ClusterError") if hasattr(aex, name)
)
#: Client-side error codes that mean "the cluster could not be reached", not "the request is wrong".
_UNREACHABLE_CODES: Final = {-15, -11, -10, -8, -7, 9, 11, 14, 18}


class AerospikeOptions(StoreOptions):
    """Which Aerospike cluster and namespace hold the online values, and how long a call may take."""

    hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1:3000"], min_length=1)
    """Seed nodes as ``host:port``; the client discovers the rest of the cluster from any one of them."""

    namespace: str = "test"
    """Aerospike namespace holding the sets (configured on the server; ``test`` is the default one)."""

    set_prefix: str = ""
    """Prepended to every set name, so that several deployments can share one namespace. Sets are named
    ``<set_prefix><project>.<table>``, hashed to fit Aerospike's 63-character limit when longer."""

    connect_timeout_ms: int = Field(default=1_000, gt=0)
    """How long opening the store waits for the cluster, in milliseconds."""

    read_timeout_ms: int = Field(default=1_000, gt=0)
    """Total time one read (a get or a batch read, retries included) may take, in milliseconds."""

    write_timeout_ms: int = Field(default=5_000, gt=0)
    """Total time one write, prune or drop request (a batch of records) may take, in milliseconds."""

    @field_validator("hosts")
    @classmethod
    def _host_port(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            name, sep, port = host.rpartition(":")
            if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"Aerospike host {host!r} must be written host:port, e.g. 127.0.0.1:3000")
        return hosts

    def seeds(self) -> list[tuple[str, int]]:
        """`hosts` as the client wants them."""
        return [(name, int(port)) for name, _, port in (h.rpartition(":") for h in self.hosts)]


def set_name(prefix: str, project: str, table: str) -> str:
    """The set of one (project, table): readable when it can be, hashed when it must be.

    Plain names (letters, digits, ``_``, ``-``) joined by ``.`` cannot collide: neither part
    contains the dot. Anything else — a dot inside a name, other characters, a name past 63
    characters — becomes a readable head plus ``~`` and a hash, and ``~`` never occurs in a
    plain name.
    """
    plain = f"{prefix}{project}.{table}"
    if (
        _PLAIN_NAME.fullmatch(project)
        and _PLAIN_NAME.fullmatch(table)
        and len(plain) <= SET_NAME_MAX
        and "~" not in prefix
    ):
        return plain
    digest = hashlib.blake2b(f"{prefix}\x00{project}\x00{table}".encode(), digest_size=10).hexdigest()
    head = re.sub(r"[^A-Za-z0-9_\-.]", "_", plain)[: SET_NAME_MAX - len(digest) - 1]
    return f"{head}~{digest}"


def rule4_filter(event_us: int, created_us: int) -> Any:
    """Server-side rule 4 for one value: the record is absent, or its (ev, cr) ranks at most (event, created)."""
    stored_ev, stored_cr = exp.IntBin(EVENT_BIN), exp.IntBin(CREATED_BIN)
    return exp.Or(
        exp.Not(exp.BinExists(EVENT_BIN)),
        exp.LT(stored_ev, event_us),
        exp.And(exp.Eq(stored_ev, event_us), exp.LE(stored_cr, created_us)),
    ).compile()


def _resolve(keys: Sequence[bytes], values: Sequence[bytes]) -> dict[bytes, bytes]:
    """Key → value with repeated keys resolved within the batch (rule 4; a later item wins a tie).

    Reads and checks every item before anything is sent, so a malformed or failing batch
    writes nothing.
    """
    for i, key in enumerate(keys):
        if not isinstance(key, bytes):
            raise TypeError(f"write: key {i} is not bytes: {key!r:.40}")
    return newest_per_key(keys, values)


def user_key(key: bytes) -> bytearray | str:
    """The Aerospike user key of an entity key: its bytes as a blob.

    The client hashes a `bytearray` as a blob but not a `bytes` object, and refuses an empty
    blob; the empty key becomes the empty *string*, whose digest (another particle type)
    no blob key can share.
    """
    return bytearray(key) if key else ""


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AerospikeOnlineStore(OnlineStore):
    """Latest values in an Aerospike namespace; safe across threads, processes and machines."""

    name: ClassVar[str] = "aerospike"
    options_model: ClassVar[type[StoreOptions]] = AerospikeOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        native_ttl=True, persistent=True, max_batch_rows=_CHUNK, remote=True, compare_and_set=True
    )

    def __init__(self, client: Any, options: AerospikeOptions, project: str):
        self.project = project
        self.options = options
        self._client: Any | None = client
        self._lock = threading.Lock()
        self._sets: dict[str, str] = {}
        self._where = f"Aerospike online store ({', '.join(options.hosts)}, namespace {options.namespace!r})"
        self._read_policy = {"total_timeout": options.read_timeout_ms}
        self._batch_read_policy = {"total_timeout": options.read_timeout_ms}
        self._write_policy = {"total_timeout": options.write_timeout_ms}

    @classmethod
    def open(cls, options: StoreOptions, *, project: str) -> Self:
        if not isinstance(options, AerospikeOptions):
            raise TypeError(f"AerospikeOnlineStore.open needs AerospikeOptions, got {type(options).__name__}")
        config = {
            "hosts": options.seeds(),
            "timeout": options.connect_timeout_ms,
            "policies": {
                "read": {"total_timeout": options.read_timeout_ms},
                "batch": {"total_timeout": options.read_timeout_ms},
                "write": {"total_timeout": options.write_timeout_ms},
                "scan": {"total_timeout": 0},
                "query": {"total_timeout": 0},
            },
        }
        where = f"Aerospike online store ({', '.join(options.hosts)}, namespace {options.namespace!r})"
        try:
            client = aerospike.client(config).connect()
        except aex.AerospikeError as exc:
            raise BackendUnavailable(f"{where}: cannot connect ({_message(exc)}); is the server running?") from exc
        store = cls(client, options, project)
        try:
            namespaces = store._info_namespaces()
        except aex.AerospikeError as exc:
            client.close()
            raise store._translate(exc, "open") from exc
        if namespaces is not None and options.namespace not in namespaces:
            client.close()
            raise BackendFailure(
                f"{where}: the server has no namespace {options.namespace!r} (it has {', '.join(sorted(namespaces))}); "
                "set online.namespace to one of them"
            )
        return store

    def check(self) -> list[str]:
        problems = super().check()
        try:
            namespaces = self._info_namespaces()
        except aex.AerospikeError as exc:
            raise self._translate(exc, "check") from exc
        if namespaces is not None and self.options.namespace not in namespaces:
            problems.append(
                f"{self._where}: the server has no namespace {self.options.namespace!r} "
                f"(it has {', '.join(sorted(namespaces))}); set online.namespace to one of them"
            )
        return problems

    def _info_namespaces(self) -> set[str] | None:
        answers = self._live().info_all("namespaces")
        for _node, (error, text) in answers.items():
            if error is None and text:
                return set(text.split("\t", 1)[-1].strip().split(";"))
        return None

    # -- helpers ----------------------------------------------------------------------------

    def _live(self) -> Any:
        client = self._client
        if client is None:
            raise BackendFailure(f"the {self._where} of project {self.project!r} is closed")
        return client

    def _set(self, table: str) -> str:
        name = self._sets.get(table)
        if name is None:
            name = self._sets[table] = set_name(self.options.set_prefix, self.project, table)
        return name

    def _translate(self, exc: aex.AerospikeError, action: str) -> BackendUnavailable | BackendFailure:
        """The Strato error for an Aerospike error: transient (retry) or terminal, in one line."""
        text = f"{self._where}: {action} failed: {_message(exc)}"
        if isinstance(exc, _UNREACHABLE_ERRORS) or (getattr(exc, "code", None) in _UNREACHABLE_CODES):
            return BackendUnavailable(f"{text}; the server is unreachable or too slow, retry once it is back")
        return BackendFailure(text)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except aex.AerospikeError as exc:
            raise self._translate(exc, action) from exc

    def _ttl_s(self, event_us: int, ttl: timedelta | None, now_us: int) -> int | None:
        """The record ttl in seconds for a value; None when the value has already expired."""
        if ttl is None:
            return int(aerospike.TTL_NEVER_EXPIRE)
        left_us = event_us + (ttl // timedelta(microseconds=1)) - now_us
        if left_us <= 0:
            return None
        return min(max(-(-left_us // _US), 1), _MAX_TTL_S)

    def _batch(self, records: list[Any], action: str) -> list[int]:
        """Send one batch of `br.Write`/`br.Remove`; the result code of each record."""
        client = self._live()
        with self._errors(action):
            answer = client.batch_write(br.BatchRecords(records), {"total_timeout": self.options.write_timeout_ms})
        codes = [int(r.result) for r in answer.batch_records]
        for code, record in zip(codes, answer.batch_records, strict=True):
            if code not in (0, _FILTERED_OUT, _NOT_FOUND):
                error = _record_error(code)
                raise (
                    BackendUnavailable(f"{self._where}: {action} failed: {error}; retry once the server is back")
                    if code in _UNREACHABLE_CODES or getattr(record, "in_doubt", False)
                    else BackendFailure(f"{self._where}: {action} failed: {error}")
                )
        return codes

    # -- the interface ---------------------------------------------------------------------

    def write(self, table: str, keys: Sequence[bytes], values: Sequence[bytes], *, ttl: timedelta | None = None) -> int:
        if len(keys) != len(values):
            raise ValueError(f"write to {table!r}: {len(keys)} keys but {len(values)} values")
        self._live()
        batch = _resolve(keys, values)
        if not batch:
            return 0
        namespace, set_ = self.options.namespace, self._set(table)
        now_us = time.time_ns() // 1_000
        records: list[Any] = []
        for key, value in batch.items():
            event_us, created_us = HEADER.unpack_from(value)
            record_ttl = self._ttl_s(event_us, ttl, now_us)
            if record_ttl is None:
                continue  # expired on arrival: it would be gone before anyone read it
            records.append(
                br.Write(
                    (namespace, set_, user_key(key)),
                    [
                        ops.write(VALUE_BIN, value),
                        ops.write(EVENT_BIN, event_us),
                        ops.write(CREATED_BIN, created_us),
                    ],
                    policy={"expressions": rule4_filter(event_us, created_us), "ttl": record_ttl},
                )
            )
        changed = 0
        for chunk in _chunks(records):
            changed += sum(code == 0 for code in self._batch(list(chunk), f"write to {table!r}"))
        return changed

    def write_if(
        self, table: str, keys: Sequence[bytes], expected: Sequence[bytes | None], values: Sequence[bytes]
    ) -> list[bool]:
        """Compare-and-set decided by the server under each record's lock: "must be absent" is a
        create-only write (``RECORD_EXISTS`` when it is there), "must equal" an update-only
        write filtered by the blob bin equal to the expected bytes (``FILTERED_OUT`` otherwise)."""
        items = check_cas_batch(keys, expected, values)
        self._live()
        namespace, set_ = self.options.namespace, self._set(table)
        records: list[Any] = []
        for key, old, value in items:
            event_us, created_us = HEADER.unpack_from(value)
            policy: dict[str, Any] = {"ttl": int(aerospike.TTL_NEVER_EXPIRE)}
            if old is None:
                policy["exists"] = aerospike.POLICY_EXISTS_CREATE
            else:
                policy["exists"] = aerospike.POLICY_EXISTS_UPDATE
                policy["expressions"] = exp.Eq(exp.BlobBin(VALUE_BIN), bytearray(old)).compile()
            records.append(
                br.Write(
                    (namespace, set_, user_key(key)),
                    [ops.write(VALUE_BIN, value), ops.write(EVENT_BIN, event_us), ops.write(CREATED_BIN, created_us)],
                    policy=policy,
                )
            )
        won: list[bool] = []
        action = f"compare-and-set in {table!r}"
        for chunk in _chunks(records):
            with self._errors(action):
                answer = self._live().batch_write(
                    br.BatchRecords(list(chunk)), {"total_timeout": self.options.write_timeout_ms}
                )
            for record in answer.batch_records:
                code = int(record.result)
                if code in (0, _FILTERED_OUT, _NOT_FOUND, _EXISTS) and not getattr(record, "in_doubt", False):
                    won.append(code == 0)
                elif code in _UNREACHABLE_CODES or getattr(record, "in_doubt", False):
                    raise BackendUnavailable(
                        f"{self._where}: {action} failed: {_record_error(code)}; whether it was written is "
                        "unknown: read the key again before retrying"
                    )
                else:
                    raise BackendFailure(f"{self._where}: {action} failed: {_record_error(code)}")
        return won

    def read(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        client = self._client
        if client is None:
            raise self._closed()
        set_ = self._sets.get(table) or self._set(table)
        namespace = self.options.namespace
        try:
            if len(keys) == 1:
                try:
                    _, _, bins = client.select((namespace, set_, user_key(keys[0])), (VALUE_BIN,), self._read_policy)
                except aex.RecordNotFound:
                    return [None]
                return [bins.get(VALUE_BIN)]
            if not keys:
                return []
            return self._batch_read([(namespace, set_, user_key(key)) for key in keys], f"read of {table!r}")
        except aex.AerospikeError as exc:
            raise self._translate(exc, f"read of {table!r}") from exc

    def read_tables(self, requests: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[bytes | None]]:
        if len(requests) == 1:
            return [self.read(*requests[0])]
        if self._client is None:
            raise self._closed()
        namespace = self.options.namespace
        records = [
            (namespace, self._sets.get(table) or self._set(table), user_key(key))
            for table, keys in requests
            for key in keys
        ]
        if not records:
            return [[] for _ in requests]
        tables = ", ".join(repr(table) for table, _ in requests)
        try:
            values = self._batch_read(records, f"read of {tables}")  # one batch across the sets
        except aex.AerospikeError as exc:
            raise self._translate(exc, f"read of {tables}") from exc
        out, at = [], 0
        for _, keys in requests:
            out.append(values[at : at + len(keys)])
            at += len(keys)
        return out

    def _batch_read(self, records: list[tuple[str, str, Any]], what: str) -> list[bytes | None]:
        client = self._live()
        out: list[bytes | None] = []
        for chunk in _chunks(records):
            answer = client.batch_read(list(chunk), [VALUE_BIN], self._batch_read_policy)
            for record in answer.batch_records:
                code = record.result
                if code == 0:
                    out.append(record.record[2].get(VALUE_BIN))
                elif code == _NOT_FOUND:
                    out.append(None)
                else:
                    raise BackendUnavailable(f"{self._where}: {what} failed: {_record_error(int(code))}; retry")
        return out

    def _closed(self) -> BackendFailure:
        return BackendFailure(f"the {self._where} of project {self.project!r} is closed")

    def _scan(self, table: str, expression: Any | None) -> list[bytearray]:
        """Digests of the records of `table` (matching `expression`), without their bins."""
        client = self._live()
        digests: list[bytearray] = []
        query = client.query(self.options.namespace, self._set(table))
        query.select()  # keys only: no bins travel

        def collect(record: tuple[Any, Any, Any]) -> None:
            digests.append(bytearray(record[0][3]))

        policy: dict[str, Any] = {"total_timeout": 0, "socket_timeout": self.options.write_timeout_ms}
        if expression is not None:
            policy["expressions"] = expression
        with self._errors(f"scan of {table!r}"):
            query.foreach(collect, policy, {"nobins": True})
        return digests

    def _remove(self, table: str, digests: list[bytearray], expression: Any | None, action: str) -> int:
        namespace, set_ = self.options.namespace, self._set(table)
        policy = {"expressions": expression} if expression is not None else None
        removed = 0
        for chunk in _chunks(digests):
            records = [br.Remove((namespace, set_, None, digest), policy=policy) for digest in chunk]
            removed += sum(code == 0 for code in self._batch(records, action))
        return removed

    def prune(self, table: str, older_than_us: int) -> int:
        # The same condition twice: the scan finds candidates, and each delete re-checks it
        # on the server under the record lock, so a newer value written since is kept.
        old = exp.LT(exp.IntBin(EVENT_BIN), older_than_us).compile()
        return self._remove(table, self._scan(table, old), old, f"prune of {table!r}")

    def drop(self, table: str) -> None:
        # Scan and delete rather than `truncate`: truncation works by a last-update-time cut
        # that a write in the same millisecond could fall under, and drop must be exact.
        self._remove(table, self._scan(table, None), None, f"drop of {table!r}")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aex.AerospikeError):  # a client of a cluster that is gone
                client.close()


def _message(exc: aex.AerospikeError) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    code = getattr(exc, "code", None)
    return f"{msg} (code {code})" if code is not None else str(msg)


def _record_error(code: int) -> str:
    names: dict[int, str] = {
        -15: "no response from the server",
        -10: "connection failed",
        -8: "no node for the key",
        9: "timeout",
        13: "record too big",
        8: "server out of space",
        14: "hot key: too many concurrent writes to one record",
        18: "device overload",
        22: "forbidden",
    }
    return f"record error {code}" + (f" ({names[code]})" if code in names else "")
