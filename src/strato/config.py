"""StratoConfig: resolved once, in one documented order, then passed down.

Sources, later overriding earlier:

1. defaults — an embedded store under ``.strato/`` in the feature repo, no server;
2. ``strato.yaml`` in the feature repo;
3. ``STRATO_*`` environment variables, ``__`` separating nesting levels
   (``STRATO_PROJECT``, ``STRATO_ONLINE__TYPE``, ``STRATO_ONLINE__PATH``…);
4. explicit arguments to `FeatureStore(...)` / `load_config(..., overrides=)`, as dotted keys.

Nothing below this module reads the environment. `StratoConfig.sources` records where each
value came from, which `strato config` prints.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from strato import clock, plugins
from strato.errors import ConfigError

CONFIG_FILE = "strato.yaml"
ENV_PREFIX = "STRATO_"

DEFAULTS: dict[str, Any] = {
    "project": "default",
    "registry": ".strato/registry.db",
    "offline": {"path": ".strato/offline", "engine": "duckdb"},
    "online": {"type": "lmdb", "path": ".strato/online"},
    "write": {"max_future_seconds": clock.DEFAULT_MAX_FUTURE_SECONDS},
}
_TOP_KEYS = {"project", "registry", "offline", "online", "write"}
_PATH_OPTIONS = {"path"}


@dataclass(frozen=True)
class StratoConfig:
    """Everything a `FeatureStore` needs, with paths made absolute against the repo."""

    repo_path: Path
    project: str
    registry_url: str
    offline_path: str
    offline_engine: str
    offline_options: BaseModel
    online_type: str
    online_options: BaseModel
    sources: dict[str, str] = field(default_factory=dict)
    max_future_seconds: float = clock.DEFAULT_MAX_FUTURE_SECONDS
    """``write.max_future_seconds``: how far past now an event time may be (`strato.clock`)."""

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, value, where it came from), for `strato config`."""
        rows = [
            ("project", self.project),
            ("registry", self.registry_url),
            ("offline.path", self.offline_path),
            ("offline.engine", self.offline_engine),
            ("online.type", self.online_type),
            ("write.max_future_seconds", self.max_future_seconds),
        ]
        rows += [(f"online.{k}", v) for k, v in self.online_options.model_dump().items()]
        rows += [(f"offline.{k}", v) for k, v in self.offline_options.model_dump().items()]
        return [(key, str(value), self.sources.get(key, "default")) for key, value in rows]


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(loaded) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; expected {sorted(_TOP_KEYS)}")
    for section in ("offline", "online", "write"):
        if section in loaded and not isinstance(loaded[section], dict):
            raise ConfigError(f"{path}: {section!r} must be a mapping")
    return _flatten(loaded)


def _read_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``STRATO_ONLINE__PATH=…`` → ``{"online.path": "…"}``.

    Only variables naming a setting section are read: another ``STRATO_*`` variable (say,
    ``STRATO_DEBUG`` of some other tool) is not ours to reject. Misspelt keys inside a
    section still fail, when the section's options are validated.
    """
    out: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if key.split(".")[0] in _TOP_KEYS:
            out[key] = value
    return out


def find_repo(start: Path) -> Path:
    """The nearest folder at or above `start` holding strato.yaml, else `start` itself."""
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return start


def load_config(
    repo_path: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> StratoConfig:
    """Resolve the configuration of the feature repo at `repo_path` (default: found from cwd)."""
    env = dict(os.environ if environ is None else environ)
    if repo_path is None:
        repo_path = env.get("STRATO_REPO") or find_repo(Path.cwd())
    repo = Path(repo_path).resolve()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def merge(layer: Mapping[str, Any], source: str) -> None:
        for key, value in layer.items():
            section = key.split(".")[0]
            if section not in _TOP_KEYS:
                raise ConfigError(f"{source}: unknown setting {key!r}; expected one under {sorted(_TOP_KEYS)}")
            if key in ("online.type", "offline.engine") and values.get(key) != value:
                # A different backend takes different options: drop those that earlier layers set
                # for the old one (e.g. strato.yaml's LMDB path under STRATO_ONLINE__TYPE=memory).
                for old in [k for k in values if k.startswith(f"{section}.") and k != key and k != "offline.path"]:
                    if sources.get(old) != source:
                        del values[old]
                        sources.pop(old, None)
            values[key] = value
            sources[key] = source

    merge(_flatten(DEFAULTS), "default")
    config_file = repo / CONFIG_FILE
    if config_file.is_file():
        merge(_read_yaml(config_file), CONFIG_FILE)
    merge(_read_env(env), "environment")
    merge(dict(overrides or {}), "argument")

    project = str(values.pop("project"))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", project):
        raise ConfigError(f"project {project!r} is invalid: use letters, digits and underscores")
    registry = str(values.pop("registry"))
    if "://" not in registry:
        registry = str(_absolute(repo, registry))
    online_type = str(values.pop("online.type"))
    offline_engine = str(values.pop("offline.engine"))
    offline_path = str(_absolute(repo, str(values.pop("offline.path"))))
    max_future_seconds = _max_future_seconds(values.pop("write.max_future_seconds"))
    unknown_write = sorted(k for k in values if k.startswith("write."))
    if unknown_write:
        raise ConfigError(f"unknown setting(s) {unknown_write}; 'write' takes only max_future_seconds")
    online_raw = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("online.")}
    offline_raw = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("offline.")}
    for key in _PATH_OPTIONS & online_raw.keys():
        online_raw[key] = str(_absolute(repo, str(online_raw[key])))
    online_options = _options("online", online_type, online_raw)
    offline_options = _options("offline", offline_engine, offline_raw)
    return StratoConfig(
        repo_path=repo,
        project=project,
        registry_url=registry,
        offline_path=offline_path,
        offline_engine=offline_engine,
        offline_options=offline_options,
        online_type=online_type,
        online_options=online_options,
        sources=sources,
        max_future_seconds=max_future_seconds,
    )


def _max_future_seconds(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not value >= 0 or isinstance(raw, bool):  # also refuses NaN
        raise ConfigError(f"write.max_future_seconds must be a number of seconds >= 0, got {raw!r}")
    return value


def _absolute(repo: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo / p


def _options(seam: plugins.Seam, name: str, raw: Mapping[str, Any]) -> BaseModel:
    backend = plugins.load(seam, name)
    model: type[BaseModel] = backend.options_model  # type: ignore[attr-defined]
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(f"{seam}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid {seam} options for {name!r}: {problems}") from None


def write_default_config(repo: Path, project: str) -> Path:
    """The strato.yaml that `strato init` creates: the embedded defaults, spelled out."""
    path = repo / CONFIG_FILE
    text = (
        f"# Strato feature repo. Every key can be overridden by STRATO_* environment variables.\n"
        f"project: {project}\n"
        f"registry: .strato/registry.db       # a path (SQLite) or a SQLAlchemy URL\n"
        f"offline:\n"
        f"  path: .strato/offline             # Delta Lake tables, one per feature view version\n"
        f"  engine: duckdb\n"
        f"online:\n"
        f"  type: lmdb                        # or: memory\n"
        f"  path: .strato/online\n"
    )
    path.write_text(text)
    return path
