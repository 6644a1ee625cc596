"""StratoConfig: resolved once, in one documented order, then passed down.

Sources, later overriding earlier:

1. defaults — an embedded store under ``.strato/`` in the feature repo, no server;
2. ``strato.yaml`` in the feature repo;
3. ``STRATO_*`` environment variables, ``__`` separating nesting levels
   (``STRATO_PROJECT``, ``STRATO_REGISTRY__URL``, ``STRATO_ONLINE__TYPE``, ``STRATO_ONLINE__PATH``…);
4. explicit arguments to `FeatureStore(...)` / `load_config(..., overrides=)`, as dotted keys.

Every setting is either honoured or refused: an unknown or misspelt key, a value of the
wrong shape and a damaged ``strato.yaml`` (not YAML, empty, binary, duplicate keys, no
``project``) are a `ConfigError` of one line, ``<source>: <key>: <problem>``, with a
did-you-mean where a known key is close. A silently ignored setting would send writes to
the wrong place, which is worse than refusing to start.

Paths are resolved against the repo folder; URIs (``s3://…``, ``postgresql://…``,
``file://…``: anything with a scheme) are kept verbatim, never joined to it.

Nothing below this module reads the environment. `StratoConfig.sources` records where each
value came from, which `strato config` prints.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic import Field as PydanticField

from strato import clock, plugins
from strato.errors import ConfigError

CONFIG_FILE = "strato.yaml"
ENV_PREFIX = "STRATO_"
TOKEN_ENV = "STRATO_TOKEN"

DEFAULTS: dict[str, Any] = {
    "project": "default",
    "registry": ".strato/registry.db",
    "offline": {"path": ".strato/offline", "engine": "duckdb"},
    "online": {"type": "lmdb", "path": ".strato/online"},
    "write": {"max_future_seconds": clock.DEFAULT_MAX_FUTURE_SECONDS},
}
_TOP_KEYS = {"project", "registry", "offline", "online", "write", "server"}
_SECTIONS = {"offline", "online", "write", "server"}  # mappings of options
_REGISTRY_KEYS = {"url", "path"}  # `registry:` as a mapping
_PATH_OPTIONS = {"path"}
#: Dotted prefix of the object-store options of the offline path (`strato.offline.storage`).
STORAGE_OPTIONS = "offline.storage_options"
#: Environment variables read as storage options of an object-store offline path.
_STORAGE_ENV_PREFIX = "AWS_"
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(text: str) -> bool:
    """Whether `text` has a scheme (``s3://``, ``postgresql://``, ``file://``…): kept as written."""
    return _URI.match(text) is not None


#: Option keys (upper case, delta-rs's spelling) whose values are secrets.
SECRET_KEYS = frozenset(
    {
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_KEY",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    }
)


def scheme(uri: str) -> str:
    """``s3`` for ``s3://b/p``; empty for a local path (``file://`` counts as local)."""
    if "://" not in uri:
        return ""
    found = uri.split("://", 1)[0].lower()
    return "" if found == "file" else found


def is_remote(uri: str) -> bool:
    """Whether `uri` names an object store rather than this machine's file system."""
    return scheme(uri) != ""


def normalize_storage_options(raw: Mapping[str, Any], where: str = "offline.storage_options") -> dict[str, str]:
    """Keys in delta-rs's upper-case spelling, values as strings (``true``, not ``True``)."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: option names must be strings, got {key!r}")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise ConfigError(f"{where}.{key}: expected a string, number or boolean, got {type(value).__name__}")
        out[key.upper()] = text
    return out


def redacted(options: Mapping[str, str]) -> dict[str, str]:
    """`options` fit to print: secrets shown as ``***``."""
    return {k: ("***" if k in SECRET_KEYS or "SECRET" in k or "TOKEN" in k else v) for k, v in options.items()}


_Options = TypeVar("_Options", bound=BaseModel)


class ServerOptions(BaseModel):
    """The ``server:`` section: where `strato serve` listens and what one request may cost."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Address to bind; loopback by default, so nothing is exposed until asked."""

    port: int = PydanticField(default=6566, ge=1, le=65535)
    """TCP port (Feast's feature server uses 6566 too)."""

    workers: int = PydanticField(default=1, ge=1)
    """Worker processes; each opens the store after it starts and they share the online store."""

    max_body_bytes: int = PydanticField(default=8 * 1024 * 1024, ge=1)
    """Largest request body accepted (413 beyond it), read no further than this."""

    max_batch_rows: int = PydanticField(default=10_000, ge=1)
    """Most entity rows (or pushed rows) in one request (413 beyond it)."""

    auth: bool = True
    """Require a bearer token on every request but /health; false is refused unless bound to loopback."""

    backend_timeout_s: float = PydanticField(default=5.0, gt=0)
    """Longest a request waits on a backend call (an online read of a networked store, a write): 504 beyond it."""


@dataclass(frozen=True)
class StratoConfig:
    """Everything a `FeatureStore` needs, with paths made absolute against the repo (URIs kept)."""

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
    server: ServerOptions = field(default_factory=ServerOptions)
    """The ``server:`` section, read by `strato serve`."""
    token: str | None = field(default=None, repr=False)
    """The API token from ``STRATO_TOKEN``, if set: a secret, so never in strato.yaml or `describe`."""
    offline_storage_options: dict[str, str] = field(default_factory=dict, repr=False)
    """How to reach an object-store ``offline.path`` (delta-rs's keys, upper case): the ``AWS_*``
    environment variables, then ``offline.storage_options``, then ``STRATO_OFFLINE__STORAGE_OPTIONS__*``.
    Empty for a local path. Secrets: `describe` masks them."""

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
        rows += [(f"offline.storage_options.{k}", v) for k, v in redacted(self.offline_storage_options).items()]
        rows += [(f"online.{k}", v) for k, v in self.online_options.model_dump().items()]
        rows += [(f"offline.{k}", v) for k, v in self.offline_options.model_dump().items()]
        rows += [(f"server.{k}", v) for k, v in self.server.model_dump().items()]
        return [(key, str(value), self._source(key)) for key, value in rows]

    def _source(self, key: str) -> str:
        if key in self.sources:
            return self.sources[key]
        if key.startswith(f"{STORAGE_OPTIONS}."):  # the spelling each source used: any case
            name = key.split(".", 2)[2]
            found = [v for k, v in self.sources.items() if k.upper() == f"{STORAGE_OPTIONS}.{name}".upper()]
            return found[-1] if found else "environment (AWS_*)"
        return "default"


def _suggest(key: object, known: Iterable[str], *, cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(sorted(known))}"


def _flatten(tree: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (lines {seen[key]} and {line})", key_node.start_mark
                )
            seen[key] = line
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line from a PyYAML error: its problem and where, without the quoted source lines."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{exc.problem}{where}"
    return " ".join(str(exc).split())


def _read_yaml(path: Path) -> dict[str, Any]:
    """The settings in `path`, flattened to dotted keys; a damaged file is a `ConfigError`.

    Damaged means anything but a YAML mapping naming its project: an empty or truncated
    file must never read as "no settings", which would open a new, empty project.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8); expected YAML") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (byte {data.find(0)} is NUL); expected YAML")
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if loaded is None:
        raise ConfigError(f"{path}: the file is empty; it needs at least `project: NAME` (see `strato init`)")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(loaded).__name__}")
    for key, value in loaded.items():
        if key not in _TOP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown setting{_suggest(key, _TOP_KEYS)}")
        if key in _SECTIONS and not isinstance(value, dict):
            raise ConfigError(f"{path}: {key}: must be a mapping of options (e.g. `{key}:` then `  path: ...`)")
        if key == "registry" and isinstance(value, dict) and not value:
            raise ConfigError(f"{path}: registry: an empty mapping; give `url:` or `path:`")
    if "project" not in loaded:
        raise ConfigError(f"{path}: project: missing; every strato.yaml names its project (e.g. `project: fraud`)")
    return _flatten(loaded)


def _read_env(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``STRATO_ONLINE__PATH=…`` → ``{"online.path": ("…", "STRATO_ONLINE__PATH")}``.

    Only variables naming a setting section are read: another ``STRATO_*`` variable (say,
    ``STRATO_DEBUG`` of some other tool) is not ours to reject. One whose section is a near
    miss of ours (``STRATO_ONLNE__TYPE``) is a typo, and refused rather than ignored.
    """
    out: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("STRATO_REPO", TOKEN_ENV):
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        section = key.split(".")[0]
        if section in _TOP_KEYS:
            out[key] = (value, name)
        elif difflib.get_close_matches(section, sorted(_TOP_KEYS), n=1, cutoff=0.75):
            raise ConfigError(f"{name}: {key}: unknown setting{_suggest(section, _TOP_KEYS)}")
    return out


def _normalize(layer: Mapping[str, Any], origin: Mapping[str, str]) -> dict[str, Any]:
    """One source's dotted settings, checked, with `registry` in its one spelling.

    `registry` may be a string, or a mapping holding `url` or `path`; later sources
    override it whichever spelling each used.
    """
    out: dict[str, Any] = {}
    registry_keys: list[str] = []
    for key, value in layer.items():
        where = origin[key]
        section, _, option = str(key).partition(".")
        if section not in _TOP_KEYS:
            raise ConfigError(f"{where}: {key}: unknown setting{_suggest(section, _TOP_KEYS)}")
        if value is None:
            raise ConfigError(f"{where}: {key}: has no value")
        if section == "project":
            if option:
                raise ConfigError(f"{where}: {key}: project is a name, not a mapping")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: project: expected a name, got {type(value).__name__} {value!r}")
        elif section == "registry":
            if option and option not in _REGISTRY_KEYS:
                raise ConfigError(f"{where}: {key}: unknown registry option{_suggest(option, _REGISTRY_KEYS)}")
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: {key}: expected a path or a database URL, got {value!r}")
            if option == "url" and not is_uri(value):
                raise ConfigError(
                    f"{where}: {key}: {value!r} is not a URL (e.g. postgresql://host/db); use registry.path for a file"
                )
            registry_keys.append(key)
            if len(registry_keys) > 1:
                raise ConfigError(f"{where}: {key}: give the registry once, not as {' and '.join(registry_keys)}")
            out["registry"] = value
            continue
        elif not option:
            raise ConfigError(f"{where}: {key}: must be a mapping of options, e.g. {key}.path")
        elif key == STORAGE_OPTIONS:
            raise ConfigError(
                f"{where}: {key}: must be a mapping of delta-rs storage options (e.g. AWS_ENDPOINT_URL: ...)"
            )
        elif option in ("path", "type", "engine") and not isinstance(value, str):
            raise ConfigError(f"{where}: {key}: expected a string, got {type(value).__name__} {value!r}")
        out[key] = value
    return out


def find_repo(start: Path) -> Path:
    """The nearest folder at or above `start` holding strato.yaml, else `start` itself."""
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return start


def default_project_name(folder: Path) -> str:
    """A valid project name made from a folder's name (`strato init`, ``FeatureStore(create=True)``)."""
    name = "".join(c if c.isalnum() and c.isascii() else "_" for c in folder.resolve().name)[:64] or "default"
    return f"p_{name}"[:64] if name[0].isdigit() else name


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
    repo = Path(repo_path).expanduser().resolve()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    origins: dict[str, str] = {}  # key → the file, variable or argument that set it, for messages

    def merge(layer: Mapping[str, Any], source: str, origin: Mapping[str, str]) -> None:
        for key, value in _normalize(layer, origin).items():
            section = key.split(".")[0]
            if key in ("online.type", "offline.engine") and values.get(key) != value:
                # A different backend takes different options: drop those that earlier layers set
                # for the old one (e.g. strato.yaml's LMDB path under STRATO_ONLINE__TYPE=memory).
                kept = ("offline.path", f"{STORAGE_OPTIONS}.")  # where the tables are is not an engine option
                for old in [k for k in values if k.startswith(f"{section}.") and k != key and not k.startswith(kept)]:
                    if sources.get(old) != source:
                        del values[old]
                        sources.pop(old, None)
            values[key] = value
            sources[key] = source
            origins[key] = origin.get(key, source)

    defaults = _flatten(DEFAULTS)
    merge(defaults, "default", dict.fromkeys(defaults, "default"))
    config_file = repo / CONFIG_FILE
    if config_file.is_file():
        from_file = _read_yaml(config_file)
        merge(from_file, CONFIG_FILE, dict.fromkeys(from_file, str(config_file)))
    from_env = _read_env(env)
    merge({k: v for k, (v, _) in from_env.items()}, "environment", {k: name for k, (_, name) in from_env.items()})
    arguments = {str(k): v for k, v in (overrides or {}).items()}
    merge(arguments, "argument", dict.fromkeys(arguments, "argument"))

    project = values.pop("project")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", project):
        raise ConfigError(
            f"{origins['project']}: project: {project!r} is invalid; use letters, digits and underscores "
            "(at most 64, not starting with a digit)"
        )
    registry = _location(repo, values.pop("registry"))
    online_type = values.pop("online.type")
    offline_engine = values.pop("offline.engine")
    offline_path = _location(repo, values.pop("offline.path"))
    storage_keys = [k for k in values if k.startswith(f"{STORAGE_OPTIONS}.")]
    storage_options = _storage_options(
        offline_path, env, {k[len(STORAGE_OPTIONS) + 1 :]: values.pop(k) for k in storage_keys}
    )
    max_future_seconds = _max_future_seconds(
        values.pop("write.max_future_seconds"), origins["write.max_future_seconds"]
    )
    for key in sorted(k for k in values if k.startswith("write.")):
        raise ConfigError(f"{origins[key]}: {key}: unknown setting; 'write' takes only max_future_seconds")
    server_raw = {k.split(".", 1)[1]: values.pop(k) for k in [k for k in values if k.startswith("server.")]}
    server = _validated("server", ServerOptions, server_raw, origins, "the server section")
    online_raw = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("online.")}
    offline_raw = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("offline.")}
    for key in _PATH_OPTIONS & online_raw.keys():
        if isinstance(online_raw[key], str):
            online_raw[key] = _location(repo, online_raw[key])
    online_options = _options("online", online_type, online_raw, origins)
    offline_options = _options("offline", offline_engine, offline_raw, origins)
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
        server=server,
        token=env.get(TOKEN_ENV) or None,
        offline_storage_options=storage_options,
    )


def _storage_options(path: str, env: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, str]:
    """The options of an object-store `path`: ``AWS_*`` variables, overridden by those `given`.

    A local path takes none: options given for it are refused rather than ignored.
    """
    if not is_remote(path):
        if given:
            raise ConfigError(
                f"{STORAGE_OPTIONS}: given for a local offline.path ({path}); they apply only to an "
                "object store such as s3://bucket/prefix"
            )
        return {}
    ambient = {k: v for k, v in env.items() if k.startswith(_STORAGE_ENV_PREFIX) and v}
    return {**normalize_storage_options(ambient, "environment"), **normalize_storage_options(given)}


def _location(repo: Path, where: str) -> str:
    """A URI as written; a path made absolute against the repo (``~`` expanded)."""
    if is_uri(where):
        return where
    p = Path(where).expanduser()
    return str(p if p.is_absolute() else repo / p)


def _max_future_seconds(raw: Any, origin: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not value >= 0 or isinstance(raw, bool):  # also refuses NaN
        raise ConfigError(f"{origin}: write.max_future_seconds: must be a number of seconds >= 0, got {raw!r}")
    return value


def _options(seam: plugins.Seam, name: str, raw: Mapping[str, Any], origins: Mapping[str, str]) -> BaseModel:
    backend = plugins.load(seam, name)
    model: type[BaseModel] = backend.options_model  # type: ignore[attr-defined]
    return _validated(seam, model, raw, origins, f"the {name!r} {seam} backend")


def _validated(
    section: str, model: type[_Options], raw: Mapping[str, Any], origins: Mapping[str, str], owner: str
) -> _Options:
    """`raw` (one section's options) through `model`; the first problem as one `ConfigError` line."""
    seam, name = section, owner
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        error = exc.errors()[0]
        option = ".".join(map(str, error["loc"]))
        key = f"{seam}.{option}"
        where = origins.get(key) or origins.get(f"{seam}.{option.split('.')[0]}", "argument")
        if error["type"] == "extra_forbidden":
            known = set(model.model_fields)
            hint = _suggest(option, known) if known else f"; {name} takes no options"
            problem = f"unknown option for {name}{hint}"
        elif error["type"] == "value_error":
            problem = error["msg"].removeprefix("Value error, ")
        else:
            problem = f"{error['msg']} (got {error.get('input')!r})"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {key}: {problem}{more}") from None


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
