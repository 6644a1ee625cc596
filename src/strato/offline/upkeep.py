"""Upkeep of history tables: compaction of small files, and vacuum of files no version needs.

Compaction (Delta ``OPTIMIZE``) rewrites many small files into few large ones in one commit
that changes no data; the files it replaced stay on disk, so every earlier version still
reads exactly as before (time travel is kept). Vacuum deletes files that no version within
the retention period uses any more, except those of the versions it is told to keep: the
table versions registered training sets pin (`strato.store.upkeep` decides which).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
from deltalake import DeltaTable

from strato.offline.delta import DeltaTables, _mapped_errors, _writer_properties
from strato.types import TableVersion


@dataclass(frozen=True)
class Compaction:
    """What one compaction did: files replaced and written, and the version it committed
    (None when there was nothing to compact)."""

    table: str
    files_removed: int
    files_added: int
    version: TableVersion | None


def compact(tables: DeltaTables, table_name: str, *, target_size: int | None = None) -> Compaction:
    """Rewrite the table's small files into larger ones, keeping every version readable."""
    with _mapped_errors(table_name):
        table = tables.open(table_name)
        if table is None:
            return Compaction(table_name, 0, 0, None)
        before = table.version()
        properties = _writer_properties(pa.schema(table.schema().to_arrow()))
        metrics = table.optimize.compact(target_size=target_size, writer_properties=properties)
        removed, added = int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0))
        version = table.version()
        return Compaction(table_name, removed, added, version if version != before else None)


def retention_hours(retain: timedelta) -> int:
    """Delta counts retention in whole hours: round up, so no file younger than asked goes."""
    if retain < timedelta(0):
        raise ValueError("retention must not be negative")
    return math.ceil(retain / timedelta(hours=1))


def vacuum_candidates(
    tables: DeltaTables, table_name: str, retain: timedelta, *, keep_versions: Sequence[TableVersion] = ()
) -> list[str]:
    """The files (relative to the table folder) a vacuum would delete, sorted."""
    with _mapped_errors(table_name):
        table = tables.open(table_name)
        if table is None:
            return []
        return sorted(
            table.vacuum(
                retention_hours(retain),
                dry_run=True,
                enforce_retention_duration=False,
                keep_versions=list(keep_versions) or None,
            )
        )


def vacuum(
    tables: DeltaTables, table_name: str, retain: timedelta, *, keep_versions: Sequence[TableVersion]
) -> list[str]:
    """Delete what `vacuum_candidates` lists (the files of `keep_versions` are kept); the files deleted."""
    with _mapped_errors(table_name):
        table = tables.open(table_name)
        if table is None:
            return []
        return sorted(
            table.vacuum(
                retention_hours(retain),
                dry_run=False,
                enforce_retention_duration=False,
                keep_versions=list(keep_versions) or None,
            )
        )


def files_at(tables: DeltaTables, table_name: str, versions: Iterable[TableVersion]) -> dict[TableVersion, set[str]]:
    """Per version, the files (relative to the table folder) it reads; versions whose log is
    gone are left out."""
    found: dict[TableVersion, set[str]] = {}
    with _mapped_errors(table_name):
        if tables.open(table_name) is None:
            return found
        for version in versions:
            table = tables.open(table_name)
            assert table is not None
            try:
                table.load_as_version(version)
            except Exception:  # its log was cleaned up: nothing left to keep
                continue
            found[version] = {_relative(table, uri) for uri in table.file_uris()}
    return found


def _relative(table: DeltaTable, uri: str) -> str:
    """A file's path inside the table folder (local URIs come back without ``file://``)."""
    base = table.table_uri.rstrip("/") + "/"
    for prefix in (base, base.removeprefix("file://")):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri
