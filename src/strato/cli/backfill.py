"""`strato backfill START END [VIEW]...`: compute views fed by a SqlSource over the event
times not computed yet (`strato.store.backfill`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from strato.cli import render
from strato.cli.options import RepoOption
from strato.cli.training_sets import epilog, open_store, parse_time
from strato.cli.upkeep import parse_duration
from strato.errors import UserError

if TYPE_CHECKING:
    from strato.intervals import Interval

BACKFILL_EPILOG = epilog(
    "strato backfill 2026-01-01 2026-02-01",
    "strato backfill 2026-01-01 now hourly_spend --step 1d",
    "strato backfill 2026-01-01T00:00 2026-01-02T00:00 daily_spend hourly_spend",
    "strato backfill 2026-01-01 now --dry-run     # the gaps, computing nothing",
)


def backfill(
    start: Annotated[str, typer.Argument(metavar="START", help="ISO start of the event times to compute.")],
    end: Annotated[str, typer.Argument(metavar="END", help="ISO end (exclusive), or 'now'.")],
    views: Annotated[
        list[str] | None, typer.Argument(metavar="[VIEW]...", help="Views with a SqlSource (default: all of them).")
    ] = None,
    step: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Compute each gap in pieces this long (1d, 6h): bounded memory."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the gaps that would be computed; compute nothing.")
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Compute views fed by a SqlSource query over [START, END), only where not computed yet.

    Each gap's rows are written to history and online like `strato write`; the computed
    intervals are kept in the registry, so running the same command again does nothing and
    an overlapping range computes only what is missing. Inputs are computed before the views
    that read them.
    """
    start_time, end_time = _time(start, "START"), _time(end, "END")
    piece = parse_duration(step, "--step") if step is not None else None
    with open_store(repo, read_only=False) as store:
        result = store.backfill(start_time, end_time, views or None, step=piece, dry_run=dry_run)
        intervals = {name: store.computed_intervals(name) for name in result.views}
    if dry_run:
        planned = [
            (n, intervals_text(d.computed) or "nothing to do", intervals_text(intervals[n]))
            for n, d in result.views.items()
        ]
        render.table(None, ["view", "would compute", "computed in all"], planned)
        return
    rows = [
        (
            name,
            intervals_text(done.computed) or "nothing to do",
            f"{done.rows:,}",
            ", ".join(map(str, done.table_versions)) or "-",
            intervals_text(intervals[name]),
        )
        for name, done in result.views.items()
    ]
    render.table(None, ["view", "computed now", "rows written", "new table versions", "computed in all"], rows)
    total = sum(v.rows for v in result.views.values())
    render.console.print(
        f"backfilled {render.count(total, 'row')} in {render.seconds(result.seconds)}", highlight=False
    )


def _time(text: str, what: str) -> datetime:
    moment = parse_time(text, what)
    if moment is None:  # pragma: no cover - _parse_time returns None only for None
        raise UserError(f"{what} is required")
    return moment


def intervals_text(parts: Any) -> str:
    """``[2026-01-01, 2026-01-02 06:00)`` for each interval, joined by ``; ``."""
    return "; ".join(f"[{_short(s)}, {_short(e)})" for s, e in parts)


def _short(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00").removesuffix(" 00:00")


def describe_computed(store: Any, fv: Any) -> str | None:
    """``computed: [a, b); [c, d)`` for `strato describe` of a SqlSource view, else None."""
    from strato.definitions.feature_view import SqlSource

    if not isinstance(fv.source, SqlSource):
        return None
    done: list[Interval] = store.registry.computed_intervals(fv.table_name, fv.source.fingerprint)
    reads = ", ".join([*fv.source.view_names, *fv.source.file_names])
    return f"computed by SqlSource {fv.source.fingerprint} (reads {reads}): {intervals_text(done) or 'nothing yet'}"
