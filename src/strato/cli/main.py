"""`strato`: manage a feature repo, load data, and look features up from the shell.

Every command has ``--help``. A user error prints one line and exits 1; a backend
failure prints one line and exits 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import hashlib
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer
from rich.markup import escape

from strato.cli import access as access_cli
from strato.cli import backfill as backfill_cli
from strato.cli import quality, render, training_sets, upkeep
from strato.cli.doctor import doctor as doctor_command
from strato.cli.help import examples, show_flags_as_flags, strato_command
from strato.cli.ingest import describe_freshness
from strato.cli.ingest import ingest as ingest_command
from strato.cli.options import RepoOption
from strato.cli.serve import serve as serve_command
from strato.errors import BackendError, StratoError, UserError

if TYPE_CHECKING:
    from strato.definitions.plan import ObjectKind
    from strato.store import FeatureStore

# Only typer, rich and the error tree are imported up front: `strato --help` and
# `strato version` stay quick. Each command imports the machinery it uses.

app = typer.Typer(
    name="strato",
    help="Strato: a feature store for real-time machine learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
show_flags_as_flags()

_KIND_ALIASES: dict[str, ObjectKind] = {
    "entity": "entity",
    "entities": "entity",
    "view": "feature_view",
    "views": "feature_view",
    "feature_view": "feature_view",
    "feature-view": "feature_view",
    "feature_views": "feature_view",
    "service": "feature_service",
    "services": "feature_service",
    "feature_service": "feature_service",
    "feature-service": "feature_service",
    "odfv": "on_demand_feature_view",
    "odfvs": "on_demand_feature_view",
    "on_demand_feature_view": "on_demand_feature_view",
    "on-demand-feature-view": "on_demand_feature_view",
}


class _State:
    debug = False
    interrupt: KeyboardInterrupt | None = None


def _kind(text: str) -> ObjectKind:
    try:
        return _KIND_ALIASES[text.lower()]
    except KeyError:
        raise UserError(f"unknown object kind {text!r}; use entity, view, service or odfv") from None


def _open(repo: Path | None, *, read_only: bool = False, planning: bool = False) -> FeatureStore:
    """The store of an existing feature repo; the CLI never creates one by accident.

    Read-only commands open it `read_only`: a registry that does not exist yet is an error
    for them, not a new empty file. `strato plan` before the first apply plans against an
    empty registry held in memory, so it too leaves nothing behind.
    """
    import dataclasses

    from strato.config import CONFIG_FILE, load_config
    from strato.errors import RegistryNotFoundError
    from strato.store import FeatureStore

    config = load_config(repo)
    if not (config.repo_path / CONFIG_FILE).is_file():
        where = f"in {config.repo_path}" if repo is not None else f"in {config.repo_path} or any folder above it"
        raise UserError(f"no feature repo: no {CONFIG_FILE} {where}; create one with `{strato_command()} init`")
    try:
        return FeatureStore(config=config, read_only=read_only or planning)
    except RegistryNotFoundError:
        if not planning:
            raise
        return FeatureStore(config=dataclasses.replace(config, registry_url="sqlite://"))


def _definitions(store: FeatureStore) -> list[Any]:
    from strato.cli.loader import load_definitions

    return load_definitions(store.config.repo_path)


def _parse_time(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what}: {text!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


app.command("serve", epilog=examples("serve"))(serve_command)
app.add_typer(access_cli.access_app, name="access")
app.add_typer(access_cli.token_app, name="token")
app.command("audit", epilog=access_cli.AUDIT_EPILOG)(access_cli.audit)
app.command("doctor", epilog=examples("doctor"))(doctor_command)
app.command("ingest", epilog=examples("ingest"))(ingest_command)
app.add_typer(training_sets.app, name="training-set")
app.command("lineage", epilog=training_sets.LINEAGE_EPILOG)(training_sets.lineage)
app.command("compact", epilog=upkeep.COMPACT_EPILOG)(upkeep.compact)
app.command("vacuum", epilog=upkeep.VACUUM_EPILOG)(upkeep.vacuum)
app.command("backfill", epilog=backfill_cli.BACKFILL_EPILOG)(backfill_cli.backfill)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False) -> None:
    _State.debug = debug


@app.command(epilog=examples("version"))
def version() -> None:
    """Print Strato's version."""
    import strato

    render.console.print(f"strato {strato.__version__}")


@app.command(epilog=examples("init"))
def init(
    path: Annotated[Path, typer.Argument(help="Folder for the new feature repo.")] = Path("."),
    project: Annotated[
        str | None, typer.Option(metavar="NAME", help="Project name (default: the folder name).")
    ] = None,
) -> None:
    """Create a feature repo: strato.yaml and an example definitions file."""
    from strato.cli.loader import IGNORE_FILE
    from strato.config import CONFIG_FILE, default_project_name, write_default_config

    path.mkdir(parents=True, exist_ok=True)
    if (path / CONFIG_FILE).exists():
        raise UserError(f"{path / CONFIG_FILE} already exists")
    name = project or default_project_name(path)
    write_default_config(path, name)
    example = path / "features.py"
    if not example.exists():
        example.write_text(_EXAMPLE_DEFINITIONS)
    ignore = path / IGNORE_FILE
    if not ignore.exists():
        ignore.write_text(_EXAMPLE_IGNORE)
    render.console.print(f"Created feature repo [bold]{name}[/] in {path.resolve()}")
    render.console.print("  strato.yaml   configuration (embedded: SQLite registry, Delta history, LMDB online)")
    strato = strato_command()
    repo = "" if path.resolve() == Path.cwd().resolve() else f" -r {shlex.quote(str(path))}"
    render.console.print("  features.py   example definitions")
    render.console.print(f"  {IGNORE_FILE} files that plan and apply skip (gitignore patterns)")
    render.console.print(
        escape(f"Edit them, then run: {strato} plan{repo} && {strato} apply{repo}"), soft_wrap=True, highlight=False
    )


def _plan_args(
    new_version: list[str] | None, delete: list[str] | None
) -> tuple[list[str], list[tuple[ObjectKind, str]]]:
    deletions = []
    for item in delete or []:
        kind, _, name = item.partition(":")
        if not name:
            raise UserError(f"--delete {item!r}: expected KIND:NAME, e.g. view:user_stats")
        deletions.append((_kind(kind), name))
    return list(new_version or []), deletions


NewVersionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--new-version", metavar="VIEW", help="Apply a breaking change to this view as a new version (repeatable)."
    ),
]
DeleteOption = Annotated[
    list[str] | None,
    typer.Option("--delete", metavar="KIND:NAME", help="Delete KIND:NAME, e.g. view:user_stats (repeatable)."),
]


@app.command(epilog=examples("plan"))
def plan(repo: RepoOption = None, new_version: NewVersionOption = None, delete: DeleteOption = None) -> None:
    """Show what `apply` would change, without changing anything."""
    with _open(repo, planning=True) as store:
        versions, deletions = _plan_args(new_version, delete)
        result = store.plan(_definitions(store), new_version=versions, delete=deletions)
        render.plan(result)
        if result.breaking:
            render.err_console.print("[red]breaking changes would be refused; see --new-version[/]")
            raise typer.Exit(1)


StartEmptyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--start-empty",
        help="Let this view's new version start with no data when it cannot be filled from the old one (repeatable).",
    ),
]


@app.command(epilog=examples("apply"))
def apply(
    repo: RepoOption = None,
    new_version: NewVersionOption = None,
    delete: DeleteOption = None,
    start_empty: StartEmptyOption = None,
) -> None:
    """Register the repo's definitions: new versions for changed objects, history kept."""
    with _open(repo) as store:
        versions, deletions = _plan_args(new_version, delete)
        result = store.apply(_definitions(store), new_version=versions, delete=deletions, start_empty=start_empty or [])
        render.plan(result)
        changed = sum(1 for c in result.changes if c.action.value != "unchanged")
        render.console.print(f"applied {changed} change(s) to project [bold]{store.project}[/]")


@app.command("ls", epilog=examples("ls"))
def list_objects(
    kind: Annotated[str, typer.Argument(help="entities, views or services")] = "views", repo: RepoOption = None
) -> None:
    """List registered entities, feature views or feature services."""
    object_kind = _kind(kind)
    with _open(repo, read_only=True) as store:
        if object_kind == "entity":
            rows = [
                (e.name, ", ".join(f"{k.name}:{k.dtype}" for k in e.join_keys), e.description)
                for e in store.list_entities()
            ]
            render.table(None, ["entity", "join keys", "description"], rows)
        elif object_kind == "feature_view":
            rows2 = [
                (
                    v.name,
                    v.version,
                    ", ".join(e.name for e in v.entities),
                    len(v.schema),
                    render.duration(v.ttl),
                    v.description,
                )
                for v in store.list_feature_views()
            ]
            render.table(None, ["view", "version", "entities", "features", "ttl", "description"], rows2)
        elif object_kind == "on_demand_feature_view":
            rows4 = [
                (v.name, v.version, v.mode, len(v.schema), v.udf_ref.fingerprint[:12], v.description)
                for v in store.list_on_demand_feature_views()
            ]
            render.table(None, ["on-demand view", "version", "mode", "features", "function", "description"], rows4)
        else:
            rows3 = [(s.name, s.version, len(s.feature_refs), s.description) for s in store.list_feature_services()]
            render.table(None, ["service", "version", "features", "description"], rows3)


@app.command(epilog=examples("describe"))
def describe(
    kind: Annotated[str, typer.Argument(help="entity, view or service")],
    name: Annotated[str, typer.Argument(help="Object name.")],
    version: Annotated[int | None, typer.Option(metavar="N", help="A past version (default: current).")] = None,
    repo: RepoOption = None,
) -> None:
    """Show one entity, feature view or feature service in detail (views: with their data)."""
    with _open(repo, read_only=True) as store:
        obj = store.registry.get(_kind(kind), name, version=version)
        render.describe(obj)
        if _kind(kind) == "feature_view":
            _describe_data(store, obj)


def _describe_data(store: FeatureStore, fv: Any) -> None:
    """Where the view's data stands: history commits and rows, and how far online is materialized."""
    commits = store.delta.history(fv.table_name)
    if commits:
        rows = sum(c["rows_added"] or 0 for c in commits)
        last = commits[-1]
        history = (
            f"{rows:,} rows in {len(commits)} commit(s), table version {last['version']}\n"
            f"  last write: {last['timestamp']:%Y-%m-%d %H:%M:%S} UTC"
        )
    else:
        history = "no rows yet"
    online = render.online_progress(
        fv.name, store.registry.online_progress(fv.table_name), commits[-1]["version"] if commits else None
    )
    render.console.print(f"  history: {history}\n  online: {online}")
    computed = backfill_cli.describe_computed(store, fv)
    if computed is not None:
        render.console.print(f"  {escape(computed)}", highlight=False)
    render.console.print(f"  freshness: {describe_freshness(store, fv)}", highlight=False, markup=False)
    quality.describe_stats(store.write_stats(fv.name), fv.feature_names)


@app.command(epilog=examples("quarantine"))
def quarantine(
    view: Annotated[str, typer.Argument(help="Feature view name.")],
    limit: Annotated[int, typer.Option(metavar="N", help="Print at most this many rows.")] = 20,
    out: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write every row to a .csv or .parquet file.")
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Show the rows writes set aside for breaking the view's rules (on_invalid="quarantine")."""
    with _open(repo, read_only=True) as store:
        rows = store.quarantined(view)
    if out is not None:
        quality.write_quarantine(rows, out)
    else:
        quality.show_quarantine(view, rows, limit)


@app.command(epilog=examples("history"))
def history(
    kind: Annotated[str, typer.Argument(help="entity, view or service")],
    name: Annotated[str, typer.Argument(help="Object name.")],
    repo: RepoOption = None,
) -> None:
    """Show every version of an object: when, by whom, what changed."""
    with _open(repo, read_only=True) as store:
        rows = [
            (r.version, r.action, r.applied_at.strftime("%Y-%m-%d %H:%M:%S"), r.author, r.data_version or "")
            for r in store.history(_kind(kind), name)
        ]
        render.table(f"{kind} {name}", ["version", "action", "applied (UTC)", "author", "storage version"], rows)


@app.command(epilog=examples("write"))
def write(
    view: Annotated[str, typer.Argument(help="Feature view to write to.")],
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A Parquet or CSV file, or a Delta table folder (default: the view's source).", show_default=False
        ),
    ] = None,
    to: Annotated[
        Literal["online", "offline", "online_and_offline"] | None,
        typer.Option(help="Where to write (default: wherever the view lives)."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="Key recorded in the history commit; the same key is never written twice "
            "(default: the SHA-256 of the input's content).",
            show_default=False,
        ),
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Validate a file's rows against a view and write them: all or nothing (history + online).

    Writing the same file again appends nothing to history (it is recognised by its content
    hash) and finishes the online step if the first attempt was interrupted.
    """
    source = str(file) if file is not None else "the view's source"
    with _open(repo) as store, render.err_console.status(f"reading {source}, validating, writing to {view} …"):
        started = time.perf_counter()
        key = idempotency_key
        if key is None:
            path = file if file is not None else store.source_path(view)
            key = f"sha256:{_content_hash(path)}" if path is not None and path.exists() else None
        result = store.ingest(view, file, to=to, idempotency_key=key)
        seconds = time.perf_counter() - started
    where = f"table version {result.table_version}" if result.table_version is not None else "online only"
    if result.already_written:
        render.console.print(
            f"already written: these {render.count(result.rows, 'row')} are [bold]{result.view}[/]'s {where} "
            f"(same content); history unchanged, {render.count(result.online_rows, 'online key')} updated"
        )
        return
    speed = render.rate(result.rows, seconds)
    render.console.print(
        f"wrote {render.count(result.rows, 'row')} to [bold]{result.view}[/] "
        f"({where}; {render.count(result.online_rows, 'online key')} updated) "
        f"in {render.seconds(seconds)}" + (f" ({speed})" if speed else "")
    )
    if result.quarantined:
        render.console.print(
            f"[yellow]set aside {render.count(result.quarantined, 'row')}[/] that broke the view's rules: "
            f"`strato quarantine {result.view}` lists them"
        )


def _content_hash(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and contents, in name order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    try:
        for item in files:
            if path.is_dir():
                digest.update(str(item.relative_to(path)).encode() + b"\0")
            with item.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


@app.command(epilog=examples("materialize"))
def materialize(
    start: Annotated[
        str | None, typer.Option(metavar="ISO", help="ISO start time (default: the beginning of history).")
    ] = None,
    end: Annotated[str, typer.Option(metavar="ISO|now", help="ISO end time, exclusive, or 'now'.")] = "now",
    view: Annotated[list[str] | None, typer.Option(metavar="VIEW", help="Only this view (repeatable).")] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Start each view where its last materialization ended.")
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Load the latest values from history into the online store."""
    end_time = _parse_time(end, "--end")
    assert end_time is not None
    with _open(repo) as store:
        if incremental:
            if start is not None:
                raise UserError("--incremental and --start cannot be combined")
            result = store.materialize_incremental(end_time, views=view)
        else:
            result = store.materialize(_parse_time(start, "--start"), end_time, views=view)
    for name, done in result.computed.items():
        if done.computed:
            render.console.print(
                f"computed {escape(name)} from its SqlSource: {render.count(done.rows, 'row')} "
                f"over {backfill_cli.intervals_text(done.computed)}",
                highlight=False,
            )
    rows = [(name, f"{count:,}") for name, count in result.rows.items()]
    render.table(None, ["view", "rows loaded"], rows)
    total = sum(result.rows.values())
    speed = render.rate(total, result.seconds)
    render.console.print(
        f"materialized {render.count(total, 'row')} in {render.seconds(result.seconds)}"
        + (f" ({speed})" if speed else "")
    )


@app.command(epilog=examples("prune"))
def prune(
    view: Annotated[list[str] | None, typer.Option(metavar="VIEW", help="Only this view (repeatable).")] = None,
    repo: RepoOption = None,
) -> None:
    """Delete online values older than their view's ttl (reads already treat them as expired)."""
    with _open(repo) as store:
        started = time.perf_counter()
        pruned = store.prune_expired(view)
        seconds = time.perf_counter() - started
    render.table(None, ["view", "values deleted"], [(name, f"{count:,}") for name, count in pruned.items()])
    render.console.print(f"pruned {render.count(sum(pruned.values()), 'expired value')} in {render.seconds(seconds)}")


@app.command(epilog=examples("get"))
def get(
    features: Annotated[
        list[str] | None, typer.Argument(help="Feature references, e.g. user_stats:amount_mean_7d.")
    ] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option(
            "--entity", "-e", metavar="KEY=VALUE[,…]", help="Join keys of one entity: user_id=7[,k=v] (repeatable)."
        ),
    ] = None,
    service: Annotated[
        str | None, typer.Option(metavar="NAME", help="Read every feature of this feature service.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines (one object per entity, with statuses) for scripts.")
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Look up online features for some entities and print them as a table (or JSON lines)."""
    if not entity:
        raise UserError("give at least one --entity, e.g. --entity user_id=7")
    with _open(repo, read_only=True) as store:
        if service is not None:
            if features:
                raise UserError("give either feature references or --service, not both")
            refs: Any = store.get_feature_service(service)
        elif features:
            refs = features
        else:
            raise UserError("give feature references (view:feature) or --service NAME")
        # The join keys of the views asked for: any other key in --entity is a mistake to name.
        views = [fv for _, fv, _ in store.catalog.select(refs, False)]
        key_types = {k.name: k.dtype.kind.value for fv in views for k in fv.join_keys}
        rows = [_parse_entity(text, key_types) for text in entity]
        response = store.get_online_features(refs, rows)
        data = response.to_dict()
        statuses = response.statuses()
    names = list(data)
    if as_json:
        _print_json_lines(data, statuses, len(rows))
        return
    table_rows = []
    for i in range(len(rows)):
        cells = []
        for name in names:
            value = data[name][i]
            status = statuses.get(name)
            if value is None and status is not None:
                cells.append(f"[dim]{status[i].name.lower()}[/]")
            else:
                cells.append(_format_value(value))
        table_rows.append(cells)
    render.table(None, names, table_rows)


def _print_json_lines(data: dict[str, list[Any]], statuses: dict[str, list[Any]], n: int) -> None:
    """``{"user_id": 7, "features": {...}, "statuses": {...}}`` per entity, one per line."""
    import base64
    import json

    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, list):
            if value and all(isinstance(v, tuple) for v in value):  # a map: Arrow gives (key, value) pairs
                return {k: plain(v) for k, v in value}
            return [plain(v) for v in value]
        return value

    for i in range(n):
        keys = {name: plain(values[i]) for name, values in data.items() if name not in statuses}
        line = {
            **keys,
            "features": {name: plain(data[name][i]) for name in statuses},
            "statuses": {name: codes[i].name for name, codes in statuses.items()},
        }
        sys.stdout.write(json.dumps(line, allow_nan=True) + "\n")


def _parse_entity(text: str, key_types: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UserError(f"--entity {text!r}: expected key=value pairs, e.g. user_id=7")
        key = key.strip()
        if key not in key_types:
            raise UserError(
                f"--entity {text!r}: unknown key {key!r}; the features asked for are keyed by {', '.join(key_types)}"
            )
        if key in row:
            raise UserError(f"--entity {text!r}: key {key!r} is given twice")
        if key_types[key] in ("int32", "int64"):
            try:
                row[key] = int(value)
            except ValueError:
                raise UserError(f"--entity {text!r}: {key} must be an integer") from None
        else:
            row[key] = value
    return row


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(_format_value(v) for v in value[:6])}, … ({len(value)} items)]"
    return str(value)


@app.command(epilog=examples("sql"))
def sql(
    query: Annotated[str, typer.Argument(help="SQL over feature history; each view is a table named after it.")],
    limit: Annotated[int, typer.Option(metavar="N", help="Print at most this many rows.")] = 50,
    repo: RepoOption = None,
) -> None:
    """Query feature history with SQL (DuckDB dialect)."""
    with _open(repo, read_only=True) as store:
        result = store.sql(query)
    rows = result.slice(0, limit).to_pylist()
    render.table(None, result.column_names, [[_format_value(r[c]) for c in result.column_names] for r in rows])
    if result.num_rows > limit:
        render.console.print(f"… {result.num_rows - limit:,} more rows (use --limit)")


@app.command("config", epilog=examples("config"))
def show_config(repo: RepoOption = None) -> None:
    """Print the resolved configuration and where each value came from."""
    from strato.config import load_config

    config = load_config(repo)
    render.table(f"repo {config.repo_path}", ["setting", "value", "from"], config.describe())


@app.command(epilog=examples("quickstart"))
def quickstart(
    path: Annotated[
        Path, typer.Option("--dir", metavar="PATH", help="Folder for the demo feature repo (recreated).")
    ] = Path("demo"),
    users: Annotated[int, typer.Option(metavar="N", help="Number of card holders to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed.")] = 7,
) -> None:
    """Run the fraud-scoring demo end to end: data, features, training set, model, live scoring."""
    from strato.cli.quickstart import run_quickstart

    run_quickstart(path, users=users, seed=seed)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that work in flight reports what it left behind."""


def _interrupt(signum: int, frame: object) -> None:
    """Raise Ctrl-C (or SIGTERM) as usual, keeping the exception: typer swallows it, but the
    notes that interrupted work adds to it (what it left behind) must still be printed."""
    exc = _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    _State.interrupt = exc
    raise exc


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C (exit 130) or SIGTERM (exit 143): one line, after what the work left behind.

    Never a traceback: a second Ctrl-C while this prints is ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _State.interrupt = None  # reported once, here
    _print_notes(exc)
    terminated = isinstance(exc, _Terminated)
    render.err_console.print("terminated" if terminated else "interrupted", highlight=False)
    sys.exit(143 if terminated else _INTERRUPTED)


def _print_notes(exc: BaseException) -> None:
    """What an interrupted or failed write left behind (`BaseException.add_note`), one line each."""
    for note in getattr(exc, "__notes__", ()):
        render.err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)


def run() -> None:
    """Entry point of the `strato` script: user errors become one line, not a traceback; Ctrl-C
    becomes "interrupted" and exit 130, SIGTERM "terminated" and exit 143, each after the notes
    of what interrupted work left behind."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        code = _run_app()
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    if _State.interrupt is not None or code == _INTERRUPTED:
        _interrupted(_State.interrupt or KeyboardInterrupt())
    if code:
        sys.exit(code)


def _run_app() -> int | str | None:
    """Run the app; return its exit code (printing the one line of an error)."""
    try:
        # Outside standalone mode click returns (not raises) the code of a `typer.Exit`; typer
        # turns a KeyboardInterrupt into a silent Exit(130), so 130 is an interrupt here.
        code = app(standalone_mode=False)
        return code if isinstance(code, int) else None
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code
    except typer.Abort:
        return _INTERRUPTED
    except Exception as exc:
        if type(exc).__name__ == "InterruptException":  # DuckDB's, when Ctrl-C stops a query
            return _INTERRUPTED
        import click

        # Usage errors: typer 0.29 raises its vendored click's exceptions (TyperException), older typers click's.
        show = getattr(exc, "show", None)
        if isinstance(exc, (click.exceptions.ClickException, typer.TyperException)) and callable(show):
            show()
            return int(getattr(exc, "exit_code", 2))
        if _State.debug or not isinstance(exc, StratoError):
            raise
        # One line whatever the terminal width (a pipe is 80 columns); the message is text, not markup.
        message = escape(" ".join(str(exc).splitlines()))
        render.err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        _print_notes(exc)
        return 1 if isinstance(exc, UserError) else 2 if isinstance(exc, BackendError) else 1


_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


_EXAMPLE_IGNORE = """\
# Files and folders `strato plan` and `strato apply` do not import (gitignore patterns, like
# Feast's .feastignore). Already skipped: hidden folders (.venv, .strato, .git), venv/,
# __pycache__/, data/, tests/, test_*.py, *_test.py, conftest.py, _*.py. List here any Python
# file that does work when imported (training scripts, notebooks exported as .py), e.g.:
# scripts/
# notebooks/
"""

_EXAMPLE_DEFINITIONS = '''"""Feature definitions: edit, then run `strato plan` and `strato apply`."""

from datetime import timedelta

from strato import Entity, FeatureService, FeatureView, Field, Float64, Int64, String

user = Entity("user", join_keys={"user_id": Int64}, description="A card holder")

user_stats = FeatureView(
    "user_stats",
    entities=[user],
    ttl=timedelta(days=7),
    schema=[
        Field("tx_count_7d", Int64, description="Card transactions in the last 7 days"),
        Field("amount_mean_7d", Float64, description="Mean transaction amount over 7 days"),
        Field("home_country", String),
    ],
    description="Spending profile of a card holder",
)

fraud_model_v1 = FeatureService("fraud_model_v1", features=[user_stats])
'''
