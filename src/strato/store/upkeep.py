"""Table upkeep through the store: compaction, and a vacuum that keeps what training sets pin.

A registered training set is rebuilt from the table versions it recorded; that needs their
data files. Vacuum would delete the files of versions older than its retention, so before
deleting anything it works out which of the files it would delete belong to a version some
training set pins. If any do, it refuses, naming them (nothing is deleted); with ``force``
it deletes the others and still keeps those: no training set ever loses its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from strato.definitions.feature_view import FeatureView
from strato.errors import UserError
from strato.registry.base import RegistryStore
from strato.store.catalog import Catalog
from strato.types import TableVersion

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables
    from strato.offline.upkeep import Compaction


@dataclass(frozen=True)
class PinnedFile:
    """A file vacuum would delete but keeps: training sets (``name vN``) pin a version using it."""

    view: str
    table: str
    file: str
    training_sets: tuple[str, ...]


@dataclass(frozen=True)
class VacuumReport:
    """Per storage table, the files deleted (or, with `dry_run`, that would be), and the pinned
    files kept."""

    deleted: dict[str, list[str]] = field(default_factory=dict)
    kept: list[PinnedFile] = field(default_factory=list)
    dry_run: bool = False


class Upkeep:
    """`compact` and `vacuum` over the storages of a repo's views (old versions' included)."""

    def __init__(self, catalog: Catalog, registry: RegistryStore, delta: DeltaTables):
        self._catalog = catalog
        self._registry = registry
        self._delta = delta

    def tables(self, views: Sequence[str] | None) -> list[tuple[str, str]]:
        """(view, storage table) of every offline storage of `views` (default: every view)."""
        chosen = (
            [self._catalog.current(v) for v in views]
            if views is not None
            else [v for v in self._registry.list("feature_view") if isinstance(v, FeatureView)]
        )
        out: list[tuple[str, str]] = []
        for fv in chosen:
            if not fv.offline:
                if views is not None:
                    raise UserError(f"feature view {fv.name!r} is online only (offline=False): it has no history")
                continue
            storages = {r.data_version for r in self._registry.history("feature_view", fv.name) if r.data_version}
            for data_version in sorted(storages):
                table = fv.with_versions(fv.version or 1, data_version).table_name
                out.append((fv.name, table))
        return out

    def compact(self, views: Sequence[str] | None = None) -> list[Compaction]:
        from strato.offline.upkeep import compact

        return [compact(self._delta, table) for _, table in self.tables(views)]

    def vacuum(
        self, retain: timedelta, views: Sequence[str] | None = None, *, force: bool = False, dry_run: bool = False
    ) -> VacuumReport:
        from strato.offline import upkeep as offline_upkeep

        pins: dict[str, dict[TableVersion, list[str]]] = {}
        for record in self._registry.list_training_sets():
            for pinned in record.tables:
                if pinned.table_version is not None:
                    labels = pins.setdefault(pinned.table, {}).setdefault(pinned.table_version, [])
                    labels.append(f"{record.name} v{record.version}")
        plan: list[tuple[str, str, list[str], list[TableVersion]]] = []
        kept: list[PinnedFile] = []
        for view, table in self.tables(views):
            candidates = offline_upkeep.vacuum_candidates(self._delta, table, retain)
            versions = sorted(pins.get(table, {}))
            if versions and candidates:
                holders: dict[str, set[str]] = {}
                for version, files in offline_upkeep.files_at(self._delta, table, versions).items():
                    for file in files:
                        holders.setdefault(file, set()).update(pins[table][version])
                kept += [PinnedFile(view, table, f, tuple(sorted(holders[f]))) for f in candidates if f in holders]
            plan.append((view, table, [f for f in candidates if f not in {k.file for k in kept}], versions))
        if kept and not force:
            shown = "; ".join(f"{k.table}/{k.file} (pinned by {', '.join(k.training_sets)})" for k in kept[:5])
            more = f" and {len(kept) - 5} more" if len(kept) > 5 else ""
            raise UserError(
                f"vacuum would delete {len(kept)} file(s) that registered training sets pin: {shown}{more}; "
                "nothing deleted. Use a longer retention, or --force to vacuum the rest and keep these"
            )
        report = VacuumReport(dry_run=dry_run, kept=kept)
        for _view, table, candidates, versions in plan:
            if dry_run or not candidates:
                report.deleted[table] = candidates
            else:
                report.deleted[table] = offline_upkeep.vacuum(self._delta, table, retain, keep_versions=versions)
        return report
