"""Which feature repo a `FeatureStore` opens, and when it may make one.

A folder is a feature repo when it holds ``strato.yaml``. Opening any other folder used to
create ``.strato/`` in it (the folder too, if the path was mistyped), leaving a repo that
the CLI then refused for lack of a ``strato.yaml``. Now such an open is refused, unless the
caller asks for a new repo with ``create=True``, which writes the default ``strato.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strato.config import CONFIG_FILE, StratoConfig, default_project_name, load_config, write_default_config
from strato.errors import ConfigError


def repo_config(repo_path: str | Path | None, overrides: Mapping[str, Any], *, create: bool) -> StratoConfig:
    """The resolved configuration of an existing feature repo, or of a new one when `create`.

    Without `repo_path` the repo is found as `load_config` finds it (``STRATO_REPO``, else
    the nearest folder at or above the cwd holding ``strato.yaml``).
    """
    config = load_config(repo_path, overrides=overrides)
    config_file = config.repo_path / CONFIG_FILE
    if config_file.is_file():
        return config
    if config.repo_path.exists() and not config.repo_path.is_dir():
        raise ConfigError(f"{config.repo_path} is a file, not a feature repo folder")
    if not create:
        where = str(config.repo_path) if repo_path is not None else f"{config.repo_path} or any folder above it"
        raise ConfigError(
            f"no {CONFIG_FILE} in {where}; create one with `strato init` or FeatureStore(..., create=True)"
        )
    config.repo_path.mkdir(parents=True, exist_ok=True)
    project = overrides.get("project")
    write_default_config(
        config.repo_path, project if isinstance(project, str) else default_project_name(config.repo_path)
    )
    return load_config(config.repo_path, overrides=overrides)
