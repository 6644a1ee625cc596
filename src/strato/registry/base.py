"""The registry seam: definitions at rest, with every version and who applied it.

A registry stores what `make_plan` decided. It never diffs definitions itself: `apply`
takes a `Plan` and writes one history row per changed object, in one transaction, so a
plan is applied whole or not at all. Reads give back `Definition` objects with the
registry-assigned versions filled in (`FeatureView.version` / `data_version`,
`FeatureService.version`).

Version rules, shared by every backend (so they live here, in `next_versions`):

* ``add``: version 1, or, for an object that existed before and was deleted, the next
  integer after its last version; a view gets fresh storage (``data_version = version``).
* ``update`` (compatible): previous version + 1; a view keeps its ``data_version``
  (old rows stay readable under the new schema).
* ``new version`` (breaking, asked for): previous version + 1 with fresh storage.
* ``unchanged``: nothing is written.
* ``delete``: a history row of its own (it takes the next version number); the object
  disappears from `current`, `list` and `get`, but ``get(kind, name, version=N)`` of an
  older version still works, so old data stays readable under its old version.
"""

from __future__ import annotations

import abc
import builtins  # `RegistryStore.list` shadows the builtin inside the class body
import dataclasses
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from strato.definitions.plan import OBJECT_KINDS, Action, Definition, ObjectKind, Plan
from strato.errors import NotFoundError, UserError
from strato.intervals import Interval
from strato.registry.access_records import AuditRow, TokenRow


@dataclass(frozen=True)
class Revision:
    """One row of an object's history.

    `action` is the `Action` value that produced it: ``add``, ``update``, ``new version``
    or ``delete``. `spec` is the definition as plain data (for a ``delete``, the spec of
    the version it removed); `data_version` names the storage a view version reads and
    writes, and is None for entities, services and deletions.
    """

    kind: ObjectKind
    name: str
    version: int
    action: str
    author: str
    applied_at: datetime
    spec: dict[str, Any]
    data_version: int | None


@dataclass(frozen=True)
class Head:
    """The latest history row of one object, as a backend sees it when applying a plan."""

    version: int
    action: str
    data_version: int | None

    @property
    def live(self) -> bool:
        return self.action != Action.DELETE.value


def next_versions(kind: ObjectKind, action: Action, head: Head | None) -> tuple[int, int | None]:
    """(version, data_version) of the row an `action` writes after `head`.

    Kept here rather than in each backend so the version rules above cannot drift apart
    between SQLite and PostgreSQL (or any later backend).
    """
    version = 1 if head is None else head.version + 1
    if action is Action.DELETE or kind != "feature_view":
        return version, None
    if action is Action.UPDATE and head is not None and head.data_version is not None:
        return version, head.data_version
    # ADD (first or after a delete) and NEW_VERSION start fresh storage under the new version.
    return version, version


def describe(kind: ObjectKind, name: str, version: int | None = None) -> str:
    """``feature view 'user_stats'`` (with `` version 3`` when given), for messages."""
    text = f"{kind.replace('_', ' ')} {name!r}"
    return text if version is None else f"{text} version {version}"


def check_kind(kind: object) -> ObjectKind:
    """`kind` if it is an object kind, else a `UserError` listing the kinds."""
    for known in OBJECT_KINDS:
        if kind == known:
            return known
    raise UserError(f"unknown object kind {kind!r}; expected one of {', '.join(OBJECT_KINDS)}")


def not_found(kind: ObjectKind, name: str, candidates: Iterable[str], *, version: int | None = None) -> NotFoundError:
    """A `NotFoundError` naming the object, suggesting close names (typos are the usual cause)."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return NotFoundError(f"{describe(kind, name, version)} does not exist{hint}")


@dataclass(frozen=True)
class OnlineProgress:
    """What of one storage's history is known to be in the online store.

    The claim: every row of Delta commits up to `version` whose event time is before
    `until` (every row, when `until` is None) has been written online. Keyed by storage
    (a view version's table), not by view name, so a new version starts with nothing. It
    is a lower bound: rows beyond it may be online too, and loading them again is harmless
    (design rule 4), so whatever was interrupted is repaired by the next incremental run.
    """

    version: int
    until: datetime | None = None

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise ValueError(f"online progress version must be a table version (int >= 0), got {self.version!r}")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError(f"online progress until must be timezone-aware, got {self.until!r}")


@dataclass(frozen=True)
class WriteStats:
    """What one write stored in a storage's history: the Delta version it committed, when,
    how many rows, and per-feature statistics (`strato.monitoring.stats`), plus how many
    rows data-quality rules set aside. Kept so drift can be seen across writes."""

    version: int
    written_at: datetime
    rows: int
    columns: dict[str, dict[str, Any]]
    quarantined: int = 0


@dataclass(frozen=True)
class PinnedTable:
    """One view's part in a training set: the definition version read, and the table version
    of its storage (``view@vN``, as in `TrainingSet.versions`) the rows came from.

    `table_version` is None when that storage held no data yet (its features were all null).
    """

    view: str
    view_version: int
    storage: str
    table: str
    table_version: int | None


@dataclass(frozen=True)
class TrainingSetRecord:
    """A registered training set: what it was built from, so it can be rebuilt bit for bit.

    `features` lists, in column order, each ``view@vN:feature`` reference read and the column
    it became. `spine` says where the rows came from: ``{"kind": "entity_df"}`` (saved beside
    the rows), or ``{"kind": "range", "start": iso, "end": iso, "view": name | None}`` (every
    entity of the views, or of one spine view, in that time range, read at the pinned table
    versions). `entity_fingerprint` and `content_digest` are SHA-256 digests of the entity
    frame and of the rows (`strato.store.training_sets.digest`). `location` is the folder of
    the saved rows, relative to the feature repo. `version` and `created_at` are assigned by
    the registry when the record is added.
    """

    name: str
    service: str
    service_version: int
    tables: tuple[PinnedTable, ...]
    features: tuple[tuple[str, str], ...]
    spine: dict[str, Any]
    timestamp_field: str
    entity_fingerprint: str
    content_digest: str
    row_count: int
    statistics: dict[str, dict[str, Any]]
    location: str
    format: str
    author: str
    version: int = 0
    created_at: datetime | None = None

    def to_spec(self) -> dict[str, Any]:
        """Plain data (JSON-serializable) of everything but name, version and creation time."""
        return {
            "service": self.service,
            "service_version": self.service_version,
            "tables": [dataclasses.asdict(t) for t in self.tables],
            "features": [list(f) for f in self.features],
            "spine": self.spine,
            "timestamp_field": self.timestamp_field,
            "entity_fingerprint": self.entity_fingerprint,
            "content_digest": self.content_digest,
            "row_count": self.row_count,
            "statistics": self.statistics,
            "location": self.location,
            "format": self.format,
            "author": self.author,
        }

    @classmethod
    def from_spec(cls, name: str, version: int, created_at: datetime, spec: dict[str, Any]) -> TrainingSetRecord:
        return cls(
            name=name,
            service=spec["service"],
            service_version=int(spec["service_version"]),
            tables=tuple(PinnedTable(**t) for t in spec["tables"]),
            features=tuple((str(ref), str(column)) for ref, column in spec["features"]),
            spine=dict(spec["spine"]),
            timestamp_field=spec["timestamp_field"],
            entity_fingerprint=spec["entity_fingerprint"],
            content_digest=spec["content_digest"],
            row_count=int(spec["row_count"]),
            statistics=dict(spec["statistics"]),
            location=spec["location"],
            format=spec["format"],
            author=spec["author"],
            version=version,
            created_at=created_at,
        )


class RegistryStore(abc.ABC):
    """Definitions at rest: versions, full history and online progress per storage, per project.

    Every method sees only the project given to `open`: two projects sharing one database
    never see each other's objects.
    """

    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def open(cls, url: str, *, project: str, create: bool = True) -> Self:
        """Connect to the registry at `url` (a URL or a path), creating its tables if missing.

        With ``create=False`` nothing is created, not even an empty file: a registry that
        does not exist yet is a `RegistryNotFoundError`, so a read-only command on a
        mistyped path says so instead of listing an empty project.
        """

    @abc.abstractmethod
    def apply(
        self,
        plan: Plan,
        *,
        author: str,
        before_commit: Callable[[builtins.list[Revision]], None] | None = None,
    ) -> builtins.list[Revision]:
        """Write every change of `plan` in one transaction; the new revisions, in plan order.

        Calls ``plan.raise_if_breaking()`` before writing anything. A plan made against a
        registry that has changed since (any object in ``plan.basis``) is refused whole with
        `ConflictError`, checked inside the transaction. `before_commit` runs inside it too,
        with the revisions about to be written, while no other apply can land: the store
        fills a new version's storage there, and if it raises nothing is applied.
        """

    @abc.abstractmethod
    def current(self) -> dict[tuple[ObjectKind, str], Definition]:
        """The latest, non-deleted version of every object in the project (`make_plan`'s input)."""

    @abc.abstractmethod
    def get(self, kind: ObjectKind, name: str, *, version: int | None = None) -> Definition:
        """One object: its latest version, or `version` (which may predate a deletion)."""

    @abc.abstractmethod
    def list(self, kind: ObjectKind) -> builtins.list[Definition]:
        """The latest version of every live object of `kind`, sorted by name."""

    @abc.abstractmethod
    def history(self, kind: ObjectKind, name: str) -> builtins.list[Revision]:
        """Every revision of one object, oldest first (deleted objects keep their history)."""

    @abc.abstractmethod
    def revision(self) -> int:
        """How many applies the project has seen: any change of definitions, by any process,
        makes it grow. Cheap, so a long-lived reader can poll it to know its caches are stale."""

    @abc.abstractmethod
    def online_progress(self, table: str) -> OnlineProgress | None:
        """How much of storage `table`'s history is known to be online, or None if nothing is."""

    @abc.abstractmethod
    def advance_online_progress(self, table: str, progress: OnlineProgress, *, expected: OnlineProgress | None) -> bool:
        """Record `progress` for `table` if the stored progress still equals `expected`.

        A compare-and-set, so two runs that each loaded a different slice of history cannot
        overwrite each other's claim with a wider one than either proved. Returns whether
        the record was written.
        """

    @abc.abstractmethod
    def computed_intervals(self, table: str, transform: str) -> builtins.list[Interval]:
        """The event-time intervals of storage `table` that the batch transformation with
        fingerprint `transform` has computed and written, normalized (`strato.intervals`)."""

    @abc.abstractmethod
    def add_computed_interval(self, table: str, transform: str, interval: Interval) -> builtins.list[Interval]:
        """Record `interval` as computed (merged with the recorded ones, in one transaction, so
        concurrent recorders never lose each other's intervals); returns the merged record."""

    @abc.abstractmethod
    def record_write_stats(self, table: str, stats: WriteStats) -> None:
        """Keep the statistics of the write that committed `stats.version` of storage `table`;
        recording the same version again replaces it (a retried write)."""

    @abc.abstractmethod
    def write_stats(self, table: str, *, limit: int = 20) -> builtins.list[WriteStats]:
        """The statistics of storage `table`'s latest `limit` writes, newest first."""

    # ------------------------------------------------------------------ access control
    # Rows only: what they allow is decided by `strato.access`, for the SDK and the server alike.

    @abc.abstractmethod
    def access_enabled(self) -> bool:
        """Whether access control is on for this project (`strato access enable`). Cheap."""

    @abc.abstractmethod
    def set_access(self, enabled: bool, *, first_token: TokenRow | None = None) -> None:
        """Turn access control on or off; `first_token` is stored in the same transaction, so
        enabling never leaves a project that nobody can administer."""

    @abc.abstractmethod
    def add_token(self, token: TokenRow) -> None:
        """Store a new token with its grants."""

    @abc.abstractmethod
    def token(self, token_id: str) -> TokenRow | None:
        """One token by its public id (revoked ones included), or None."""

    @abc.abstractmethod
    def tokens(self) -> builtins.list[TokenRow]:
        """Every token of the project, revoked ones included, oldest first."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str, at: datetime) -> bool:
        """Mark a token revoked; False when there is no such live token."""

    @abc.abstractmethod
    def record_audit(self, rows: Iterable[AuditRow]) -> None:
        """Append audit records (one transaction)."""

    @abc.abstractmethod
    def audit(
        self, *, denied_only: bool = False, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[AuditRow]:
        """The newest audit records first, at most `limit`."""

    @abc.abstractmethod
    def add_training_set(self, record: TrainingSetRecord) -> TrainingSetRecord:
        """Register `record` as the next version of its training set (1 for a new name), in one
        transaction; the record as stored, with `version` and `created_at` set."""

    @abc.abstractmethod
    def get_training_set(self, name: str, *, version: int | None = None) -> TrainingSetRecord:
        """One training set: its latest version, or `version`; `NotFoundError` (close names
        suggested) if there is none."""

    @abc.abstractmethod
    def list_training_sets(self, name: str | None = None) -> builtins.list[TrainingSetRecord]:
        """Every version of every training set (or of `name`), by name then version."""

    def check(self) -> builtins.list[str]:
        """What is wrong with this registry's setup, one sentence each (empty: nothing), for `strato doctor`.

        The default asks for the project's revision, which proves the database answers; a
        backend that can say more (missing tables, an unknown project) adds its findings.
        """
        self.revision()
        return []

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: URL schemes spelled differently from the backend they select.
_SCHEME_ALIASES = {"postgres": "postgresql"}


def backend_name(url: str) -> str:
    """The registry backend a `strato.yaml` ``registry:`` value selects, by its URL scheme.

    A plain path is a SQLite file; ``postgresql://`` and ``postgresql+psycopg://`` both
    select ``postgresql``. The scheme is the entry-point name, so a third-party backend
    registered as ``mysql`` is picked by ``mysql://`` URLs without changes here.
    """
    if "://" not in url:
        return "sqlite"
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    return _SCHEME_ALIASES.get(scheme, scheme)
