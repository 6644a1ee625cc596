"""`strato doctor`: is each configured engine reachable and set up as this repo needs?

Each check opens one seam the way `FeatureStore` does (by name, through `strato.plugins`),
asks it to prove itself (`RegistryStore.check`, `OnlineStore.check`, ``SELECT 1`` on the
offline engine), and records one `Check`: passed or not, and in one sentence what was
found or what is wrong and what to do. A failing check never stops the others: a dead
Redis still lets the registry and the Delta tables be examined. Only a configuration that
does not load stops the run, as nothing else can be opened without it.

Nothing is written: the registry is opened ``create=False`` and history only read. The
one exception is the online store, which an embedded engine (LMDB) creates on open, as
every command does.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strato import plugins
from strato.config import CONFIG_FILE, StratoConfig, is_remote, load_config
from strato.definitions.feature_view import FeatureView
from strato.errors import ConfigError, StratoError
from strato.offline.base import OfflineEngine
from strato.online.base import OnlineStore
from strato.registry.base import RegistryStore, backend_name

if TYPE_CHECKING:
    from strato.offline.delta import DeltaTables

#: Distributions whose versions a doctor run reports (a missing one is reported as such).
PACKAGES = ("strato", "duckdb", "deltalake", "lmdb")


@dataclass(frozen=True)
class Check:
    """The outcome of one check: `name` (what was checked), `ok`, and one line of `detail`."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """Every check of one doctor run, in the order they ran."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """Whether every check passed (`strato doctor` then exits 0)."""
        return all(c.ok for c in self.checks)


def diagnose(repo: str | Path | None = None) -> Report:
    """Run every check on the feature repo at `repo` (default: found from the cwd)."""
    checks: list[Check] = []
    try:
        config = load_config(repo)
        if not (config.repo_path / CONFIG_FILE).is_file():
            raise ConfigError(f"no {CONFIG_FILE} in {config.repo_path}; create one with `strato init`")
    except StratoError as exc:
        checks.append(Check("config", False, _one_line(exc)))
        checks.append(versions())
        return Report(checks)
    checks.append(Check("config", True, f"{config.repo_path / CONFIG_FILE} loads (project {config.project!r})"))
    registry_check, registry = _registry(config)
    checks.append(registry_check)
    checks.append(_online(config))
    checks.append(_offline(config))
    if is_remote(config.offline_path):
        checks.append(_object_store(config))
    if registry is not None:
        try:
            checks.extend(_views(config, registry))
        finally:
            registry.close()
    checks.append(versions())
    return Report(checks)


def versions() -> Check:
    """The installed versions of Strato and the engines' libraries (always passes)."""
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return Check("versions", True, ", ".join(found))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _attempt(name: str, run: Callable[[], tuple[list[str], str]]) -> Check:
    """`run()` gives (problems, what passed looks like); an error raised is the problem."""
    try:
        problems, passed = run()
    except StratoError as exc:
        return Check(name, False, f"{_one_line(exc)} ({type(exc).__name__})")
    except Exception as exc:  # a driver error a backend failed to map: still one line, not a crash
        return Check(name, False, f"{type(exc).__name__}: {_one_line(exc)}")
    return Check(name, not problems, "; ".join(problems) if problems else passed)


def _registry(config: StratoConfig) -> tuple[Check, RegistryStore | None]:
    """Reachable, tables present, project known; the open registry, kept for the view checks."""
    opened: list[RegistryStore] = []

    def run() -> tuple[list[str], str]:
        kind = backend_name(config.registry_url)
        cls: type[RegistryStore] = plugins.load("registry", kind)
        registry = cls.open(config.registry_url, project=config.project, create=False)
        opened.append(registry)
        problems = registry.check()
        return (
            problems,
            f"{kind} at {_safe(config.registry_url)} (project {config.project!r}, {registry.revision()} applies)",
        )

    check = _attempt("registry", run)
    registry = opened[0] if opened else None
    if registry is not None and not check.ok:
        registry.close()
        registry = None
    return check, registry


def _online(config: StratoConfig) -> Check:
    def run() -> tuple[list[str], str]:
        cls: type[OnlineStore] = plugins.load("online", config.online_type)
        with cls.open(config.online_options, project=config.project) as store:  # type: ignore[arg-type]
            problems = store.check()
        return problems, f"{config.online_type} ({_where(config.online_options.model_dump())}) answers reads"

    return _attempt("online", run)


def _offline(config: StratoConfig) -> Check:
    def run() -> tuple[list[str], str]:
        cls: type[OfflineEngine] = plugins.load("offline", config.offline_engine)
        with cls.open(config.offline_options) as engine:  # type: ignore[arg-type]
            engine.serve_storage(config.offline_path)
            problems = engine.check()  # DuckDB: SELECT 1; Spark: session, delta-spark's jars, a job
        what = "runs SQL" if cls.capabilities.sql else "runs jobs"
        return problems, f"{config.offline_engine} {what}; history at {_safe(config.offline_path)}"

    return _attempt("offline", run)


def _object_store(config: StratoConfig) -> Check:
    """The bucket of an object-store offline path exists and these credentials can list it."""

    def run() -> tuple[list[str], str]:
        from strato.offline.storage import check_reachable  # pyarrow's S3 client only when asked

        problems = check_reachable(config.offline_path, config.offline_storage_options)
        return problems, f"{config.offline_path} is reachable and lists"

    return _attempt("object store", run)


def _views(config: StratoConfig, registry: RegistryStore) -> list[Check]:
    """Each current view's history is readable; where it is served online, how far behind online is."""
    from strato.offline.delta import DeltaTables  # deltalake only when a registry answered

    try:
        views = [fv for fv in registry.list("feature_view") if isinstance(fv, FeatureView)]
        delta = DeltaTables(config.offline_path, config.project, config.offline_storage_options)
    except StratoError as exc:
        return [Check("views", False, _one_line(exc))]
    return [_attempt(f"view {fv.name}", functools.partial(_view, fv, delta, registry)) for fv in views]


def _view(fv: FeatureView, delta: DeltaTables, registry: RegistryStore) -> tuple[list[str], str]:
    table = fv.table_name
    latest = delta.version(table)
    if latest is None:
        return [], f"{table}: no history yet"
    delta.snapshot(table)  # the log and schema read, not only the version
    text = f"{table}: history at table version {latest}"
    if not fv.online:
        return [], text
    progress = registry.online_progress(table)
    if progress is None or progress.version < latest:
        done = "none of it" if progress is None else f"up to version {progress.version}"
        return [], f"{text}; online has {done}: run `strato materialize --incremental --view {fv.name}`"
    return [], f"{text}; online up to date"


def _where(options: dict[str, object]) -> str:
    shown = [f"{k}={_safe(str(options[k]))}" for k in ("path", "url", "hosts", "namespace") if k in options]
    return ", ".join(shown) or "default options"


def _safe(location: str) -> str:
    """A URL without its password (``postgresql://u:secret@h`` → ``postgresql://u:***@h``)."""
    scheme, sep, rest = location.partition("://")
    if not sep or "@" not in rest:
        return location
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if has_password else ''}@{host}"
