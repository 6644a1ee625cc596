"""`strato training-set create/ls/describe/rebuild` and `strato lineage`.

Registered training sets (`strato.store.training_sets`): built from a feature service and an
entity file or a time range, saved under the repo, described from the registry, and rebuilt
from the table versions they pinned, with a check that the rows came back bit for bit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from strato.cli import render
from strato.cli.options import RepoOption
from strato.errors import UserError

if TYPE_CHECKING:
    from strato.store import FeatureStore
    from strato.store.lineage import Node


def epilog(*lines: str) -> str:
    """An ``Examples:`` epilog, as `strato.cli.help.examples` writes them."""
    return "[bold]Examples:[/]\n" + "\n".join(f"  {line}" for line in lines)


app = typer.Typer(
    name="training-set",
    help="Registered training sets: create, list, describe and rebuild them bit for bit.",
    no_args_is_help=True,
)


def open_store(repo: Path | None, *, read_only: bool) -> FeatureStore:
    """The store of an existing feature repo (never a new one), as the other commands open it."""
    from strato.config import CONFIG_FILE, load_config
    from strato.store import FeatureStore

    config = load_config(repo)
    if not (config.repo_path / CONFIG_FILE).is_file():
        raise UserError(f"no feature repo: no {CONFIG_FILE} in {config.repo_path}; create one with `strato init`")
    return FeatureStore(config=config, read_only=read_only)


def parse_time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command(
    "create",
    epilog=epilog(
        "strato training-set create churn -s fraud_model_v1 --entities labels.parquet",
        "strato training-set create jan -s fraud_model_v1 \\",
        "    --start 2026-01-01 --end 2026-02-01",
        "strato training-set create lab -s fraud_model_v1 --spine labels \\",
        "    --start 2026-01-01 --end 2026-02-01",
    ),
)
def create(
    name: Annotated[str, typer.Argument(help="Training set name; creating it again adds a version.")],
    service: Annotated[
        str, typer.Option("--service", "-s", metavar="SERVICE", help="Feature service (NAME or NAME@vN).")
    ],
    entities: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Entity rows (Parquet or CSV): join keys, event time, labels."),
    ] = None,
    start: Annotated[str | None, typer.Option(metavar="TIME", help="Without --entities: from this time.")] = None,
    end: Annotated[str | None, typer.Option(metavar="TIME", help="Without --entities: before this time.")] = None,
    spine: Annotated[
        str | None, typer.Option(metavar="VIEW", help="Take the entity rows from this view (e.g. labels).")
    ] = None,
    timestamp_field: Annotated[
        str, typer.Option(metavar="COLUMN", help="Event time column of --entities.")
    ] = "event_timestamp",
    full_feature_names: Annotated[
        bool, typer.Option("--full-feature-names", help="Prefix feature columns with their view name.")
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Build a training set from a feature service, save it under the repo and register it."""
    from strato import sources

    entity_df = sources.read_file(entities) if entities is not None else None
    with open_store(repo, read_only=False) as store, render.err_console.status(f"building training set {name} …"):
        saved = store.create_training_set(
            name,
            service,
            entity_df,
            start=parse_time(start, "--start"),
            end=parse_time(end, "--end"),
            spine_view=spine,
            timestamp_field=timestamp_field,
            full_feature_names=full_feature_names,
        )
    record = saved.record
    render.console.print(
        f"training set [bold]{escape(record.name)}[/] version {record.version}: {record.row_count:,} rows, "
        f"{len(record.features)} features from {escape(record.service)} v{record.service_version} "
        f"→ {escape(record.location)}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("ls", epilog=epilog("strato training-set ls", "strato training-set ls churn   # every version"))
def list_training_sets(
    name: Annotated[str | None, typer.Argument(help="Only this training set (all its versions).")] = None,
    repo: RepoOption = None,
) -> None:
    """List registered training sets (the latest version of each, or every version of NAME)."""
    with open_store(repo, read_only=True) as store:
        records = store.list_training_sets(name)
    if name is None:
        latest = {r.name: r for r in records}
        records = list(latest.values())
    rows = [
        (
            r.name,
            r.version,
            f"{r.service} v{r.service_version}",
            f"{r.row_count:,}",
            r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "",
            r.author,
        )
        for r in records
    ]
    render.table(None, ["training set", "version", "service", "rows", "created (UTC)", "author"], rows)


@app.command("describe", epilog=epilog("strato training-set describe churn", "strato training-set describe churn -v 1"))
def describe(
    name: Annotated[str, typer.Argument(help="Training set name.")],
    version: Annotated[int | None, typer.Option("--version", "-v", metavar="N", help="Default: latest.")] = None,
    repo: RepoOption = None,
) -> None:
    """Show what a training set was built from, and its per-column statistics."""
    with open_store(repo, read_only=True) as store:
        r = store.registry.get_training_set(name, version=version)
    when = r.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if r.created_at else "?"
    spine = (
        "entity frame (saved beside the rows)"
        if r.spine["kind"] == "entity_df"
        else f"{r.spine.get('view') or 'every entity'} from {r.spine['start']} to {r.spine['end']}"
    )
    render.console.print(
        f"[bold]training set {escape(r.name)}[/] version {r.version}\n"
        f"  service: {escape(r.service)} v{r.service_version}\n"
        f"  rows: {r.row_count:,} · created {when} by {escape(r.author)}\n"
        f"  entities: {escape(spine)}\n"
        f"  entity fingerprint: {r.entity_fingerprint[:16]}…  content digest: {r.content_digest[:16]}…\n"
        f"  saved at: {escape(r.location)} ({r.format})",
        highlight=False,
        soft_wrap=True,
    )
    pins = [(t.view, t.view_version, t.table, "" if t.table_version is None else t.table_version) for t in r.tables]
    render.table("pinned versions", ["view", "view version", "table", "table version"], pins)
    stats = [
        (
            column,
            s.get("type", ""),
            f"{s.get('count', 0):,}",
            f"{s.get('nulls', 0):,}",
            _stat(s.get("min")),
            _stat(s.get("max")),
            _stat(s.get("mean")),
        )
        for column, s in r.statistics.items()
    ]
    render.table("statistics", ["column", "type", "count", "nulls", "min", "max", "mean"], stats)


def _stat(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return render.number(value)
    return json.dumps(value) if not isinstance(value, str) else value


@app.command("rebuild", epilog=epilog("strato training-set rebuild churn", "strato training-set rebuild churn -v 1"))
def rebuild(
    name: Annotated[str, typer.Argument(help="Training set name.")],
    version: Annotated[int | None, typer.Option("--version", "-v", metavar="N", help="Default: latest.")] = None,
    repo: RepoOption = None,
) -> None:
    """Recompute a training set from the versions it pinned and check it is bit for bit the same.

    Exits 1 if the rows differ. Saved rows that went missing are written back when they match.
    """
    with open_store(repo, read_only=False) as store, render.err_console.status(f"rebuilding training set {name} …"):
        result = store.rebuild_training_set(name, version)
    record = result.record
    what = f"training set {escape(record.name)} version {record.version}: {record.row_count:,} rows"
    if result.matches:
        render.console.print(
            f"[green]✔[/] {what} rebuilt bit for bit in {render.seconds(result.seconds)}", highlight=False
        )
        return
    render.console.print(
        f"[red]✘[/] {what}: the rebuilt rows differ (digest {result.digest[:16]}…, "
        f"registered {record.content_digest[:16]}…)",
        highlight=False,
    )
    raise typer.Exit(1)


def lineage(
    target: Annotated[
        str, typer.Argument(metavar="OBJECT", help="training-set:NAME, service:NAME, view:NAME or a bare name.")
    ],
    repo: RepoOption = None,
) -> None:
    """Show where a training set comes from (service, views, sources), or what uses a view."""
    from rich.tree import Tree

    with open_store(repo, read_only=True) as store:
        root = store.lineage(target)

    def grow(tree: Tree, node: Node) -> None:
        for child in node.children:
            grow(tree.add(_styled(child)), child)

    tree = Tree(_styled(root))
    grow(tree, root)
    render.console.print(tree)


LINEAGE_EPILOG = epilog(
    "strato lineage training-set:churn",
    "strato lineage view:user_stats",
    "strato lineage fraud_model_v1",
)

_STYLES = {"training_set": "bold magenta", "feature_service": "bold cyan", "feature_view": "bold green"}


def _styled(node: Node) -> str:
    style = _STYLES.get(node.kind)
    text = escape(node.label)
    return f"[{style}]{text}[/]" if style else text
