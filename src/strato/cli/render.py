"""Turn results into what a person reads: rich tables on a terminal, plain text in a pipe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from strato.definitions.entity import Entity
    from strato.definitions.feature_service import FeatureService
    from strato.definitions.feature_view import FeatureView
    from strato.definitions.plan import Plan
    from strato.registry.base import OnlineProgress

console = Console()
err_console = Console(stderr=True)

_ACTION_STYLE = {  # by `Action` value
    "add": "green",
    "update": "yellow",
    "new version": "magenta",
    "breaking": "bold red",
    "delete": "red",
    "unchanged": "dim",
}


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table whose first column (a name) never wraps; long text elsewhere folds."""
    out = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        out.add_column(column, overflow="fold", no_wrap=i == 0)
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    console.print(out)


def duration(value: timedelta | None) -> str:
    """``7d``, ``36h``, ``1d 2h 30m``, ``90s`` — how a person writes a ttl; ``-`` for none."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def plan(p: Plan) -> None:
    """The changes of a plan (unchanged objects only counted), or "no changes"."""
    changed = [c for c in p.changes if c.action.value != "unchanged"]
    unchanged = len(p.changes) - len(changed)
    if not changed:
        console.print(f"no changes ({unchanged} object(s) up to date)")
        return
    rows = [
        (
            f"[{_ACTION_STYLE[c.action.value]}]{c.action.value}[/]",
            c.kind.replace("_", " "),
            c.name,
            "; ".join(c.details),
        )
        for c in changed
    ]
    table(None, ["action", "kind", "name", "details"], rows)
    if unchanged:
        console.print(f"[dim]{unchanged} object(s) unchanged[/]")


def describe(obj: Entity | FeatureView | FeatureService) -> None:
    from strato.definitions.entity import Entity
    from strato.definitions.feature_view import FeatureView

    if isinstance(obj, Entity):
        console.print(f"[bold]entity[/] {obj.name}  {obj.description}")
        table("join keys", ["name", "type"], [(k.name, k.dtype) for k in obj.join_keys])
    elif isinstance(obj, FeatureView):
        ttl = duration(obj.ttl) if obj.ttl is not None else "none"
        console.print(
            f"[bold]feature view[/] {obj.name}  version {obj.version} (storage {obj.table_name})\n"
            f"  entities: {', '.join(e.name for e in obj.entities)}   ttl: {ttl}   "
            f"online: {obj.online}   offline: {obj.offline}   owner: {obj.owner or '-'}\n"
            f"  {obj.description}"
        )
        rows = [(k.name, k.dtype, "join key") for k in obj.join_keys]
        rows += [(f.name, f.dtype, f.description) for f in obj.schema]
        table(None, ["field", "type", "description"], rows)
    else:
        console.print(f"[bold]feature service[/] {obj.name}  version {obj.version}  {obj.description}")
        table(None, ["view", "features"], [(view, ", ".join(names)) for view, names in obj.features])


def online_progress(view: str, progress: OnlineProgress | None, latest: int | None) -> str:
    """How far the online store is behind a view's history, and the command that catches it up."""
    catch_up = f"run `strato materialize --incremental --view {view}`"
    if latest is None:
        return "no history yet"
    if progress is None:
        return f"no commit of history known online (table versions 0-{latest}); {catch_up}"
    until = f" (rows with event time before {progress.until:%Y-%m-%d %H:%M:%S} UTC)" if progress.until else ""
    if progress.version >= latest:
        return f"up to date with table version {latest}{until}"
    behind = latest - progress.version
    return f"table version {progress.version}{until} of {latest}: {behind} commit(s) behind; {catch_up}"
