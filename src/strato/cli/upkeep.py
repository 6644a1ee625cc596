"""`strato compact` and `strato vacuum`: upkeep of the history tables (`strato.store.upkeep`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.markup import escape

from strato.cli import render
from strato.cli.options import RepoOption
from strato.cli.training_sets import epilog, open_store
from strato.errors import UserError

COMPACT_EPILOG = epilog("strato compact", "strato compact user_stats")
VACUUM_EPILOG = epilog(
    "strato vacuum --retain 7d --dry-run",
    "strato vacuum --retain 30d --view user_stats",
    "strato vacuum --retain 0s --force     # keeps what training sets pin",
)

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_UNITS["s"] = timedelta(seconds=1)
_DURATION = re.compile(r"(?:(\d+)([wdhms]))+")


def parse_duration(text: str, what: str = "--retain") -> timedelta:
    """``7d``, ``12h``, ``1d12h``, ``90m``, ``0s`` (w, d, h, m, s) as a timedelta."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise UserError(f"{what}: {text!r} is not a duration such as 7d, 12h, 1d12h or 0s")
    return sum((int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([wdhms])", cleaned)), start=timedelta(0))


def compact(
    views: Annotated[list[str] | None, typer.Argument(metavar="[VIEW]...", help="Views (default: all).")] = None,
    repo: RepoOption = None,
) -> None:
    """Rewrite many small history files into few large ones; every table version stays readable."""
    with open_store(repo, read_only=False) as store, render.err_console.status("compacting …"):
        done = store.compact(views or None)
    rows = [
        (c.table, c.files_removed, c.files_added, "nothing to do" if c.version is None else c.version) for c in done
    ]
    render.table(None, ["table", "files replaced", "files written", "new table version"], rows)


def vacuum(
    retain: Annotated[
        str,
        typer.Option("--retain", metavar="DURATION", help="Keep files still read by versions this young (7d, 12h)."),
    ],
    views: Annotated[
        list[str] | None, typer.Option("--view", metavar="VIEW", help="Only this view (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Vacuum even if training sets pin some files (those are kept).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files, delete nothing.")] = False,
    repo: RepoOption = None,
) -> None:
    """Delete history files no longer read, except those that registered training sets pin.

    If any file to delete is pinned by a training set, nothing is deleted and the files are
    named; --force deletes the others and still keeps them. Time travel to versions older
    than --retain stops working (training sets' versions excepted). Delta counts retention in
    whole hours (rounded up).
    """
    duration = parse_duration(retain)
    with open_store(repo, read_only=False) as store, render.err_console.status("vacuuming …"):
        report = store.vacuum(duration, views, force=force, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    rows = [(table, len(files)) for table, files in report.deleted.items()]
    render.table(None, ["table", f"files {verb}"], rows)
    for kept in report.kept:
        render.console.print(
            f"kept {escape(kept.table)}/{escape(kept.file)} (pinned by {escape(', '.join(kept.training_sets))})",
            highlight=False,
            soft_wrap=True,
        )
