"""Turn results into what a person reads: rich tables on a terminal, plain text in a pipe."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

if TYPE_CHECKING:
    from strato.definitions.entity import Entity
    from strato.definitions.feature_service import FeatureService
    from strato.definitions.feature_view import FeatureView
    from strato.definitions.on_demand import OnDemandFeatureView
    from strato.definitions.plan import Plan
    from strato.registry.base import OnlineProgress

# On a terminal rich fits output to its width. In a pipe or a file there is no width to fit (rich
# would assume 80 columns and fold words mid-way), so lines are never wrapped or folded there: a
# table is as wide as its content, a message one line.
PIPE_WIDTH = 10_000
# A rate is shown only for work long and large enough to measure throughput; below these it says
# more about fixed costs (opening tables, a first commit) than speed ("2 rows/s" for a 2-row write).
MIN_RATE_SECONDS = 0.5
MIN_RATE_ROWS = 1_000


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    try:
        interactive = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        interactive = False
    return Console(stderr=stderr) if interactive else Console(stderr=stderr, width=PIPE_WIDTH)


console = _console(stderr=False)
err_console = _console(stderr=True)

_ACTION_STYLE = {  # by `Action` value
    "add": "green",
    "update": "yellow",
    "new version": "magenta",
    "breaking": "bold red",
    "delete": "red",
    "unchanged": "dim",
}


def _rules(field: Any) -> str:
    """A field's `Expect` rules as short text: ``ge=0 le=100 allowed=[...]``."""
    if field.expect is None:
        return ""
    return " ".join(
        f"{k}={v!r}" if not isinstance(v, dict) else f"{k}={v['datetime']}" for k, v in field.expect.to_spec().items()
    )


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table whose first column (a name) never wraps; long text elsewhere folds."""
    out = Table(title=title, title_justify="left", header_style="bold")
    for i, column in enumerate(columns):
        out.add_column(column, overflow="fold", no_wrap=i == 0)
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    console.print(out)


def rule(title: str) -> None:
    """A section header: a line across the terminal, at most 80 columns (also in a pipe)."""
    console.print(Rule(title), width=min(console.width, 80))


def count(n: int, noun: str) -> str:
    """``1 row``, ``0 rows``, ``1,234,567 rows``: a count as a person writes it."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def number(x: float) -> str:
    """A figure as a person reads it: ``950``, ``9,999``, ``12.3K``, ``1.23M``, ``4.56B``."""
    if abs(x) < 10_000:
        return f"{x:,.0f}"
    for size, suffix in ((1e3, "K"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        scaled = x / size
        digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
        text = f"{scaled:.{digits}f}"
        if abs(float(text)) < 1000 or suffix == "T":
            return f"{text}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def seconds(value: float) -> str:
    """``0.04 s``, ``12.3 s``, ``2m 05s``: elapsed time to the precision a person cares for."""
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m {rest:02d}s"


def rate(n: int, elapsed: float, noun: str = "rows") -> str | None:
    """``1.23M rows/s``, or None when the work was too small or quick for a rate to mean anything."""
    if n < MIN_RATE_ROWS or elapsed < MIN_RATE_SECONDS:
        return None
    return f"{number(n / elapsed)} {noun}/s"


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


def describe(obj: Entity | FeatureView | FeatureService | OnDemandFeatureView) -> None:
    from strato.definitions.entity import Entity
    from strato.definitions.feature_view import FeatureView
    from strato.definitions.on_demand import OnDemandFeatureView

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
        if obj.has_expectations:
            unique = ", each (keys, event time) once per batch" if obj.unique_events else ""
            fate = "refused whole" if obj.on_invalid == "reject" else "written without its offending rows (quarantined)"
            console.print(f"  data quality: a batch breaking a rule is {fate}{unique}")
        rows: list[tuple[Any, ...]] = [(k.name, k.dtype, "join key", "") for k in obj.join_keys]
        rows += [(f.name, f.dtype, f.description, _rules(f)) for f in obj.schema]
        columns = ["field", "type", "description", "rules"]
        if not any(f.expect for f in obj.schema):
            rows, columns = [r[:3] for r in rows], columns[:3]
        table(None, columns, rows)
    elif isinstance(obj, OnDemandFeatureView):
        ref = obj.udf_ref
        console.print(
            f"[bold]on-demand feature view[/] {obj.name}  version {obj.version}  mode: {obj.mode}"
            f"{' (singleton)' if obj.singleton else ''}\n  function: {ref.module}.{ref.qualname} "
            f"(fingerprint {ref.fingerprint[:12]})\n  {obj.description}"
        )
        table(None, ["output", "type", "description"], [(f.name, f.dtype, f.description) for f in obj.schema])
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
