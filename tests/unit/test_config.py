"""`config.load_config`: defaults < strato.yaml < STRATO_* environment < arguments, with sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.config import load_config, write_default_config
from strato.errors import ConfigError, PluginNotFoundError


def test_defaults_are_embedded_and_relative_to_the_repo(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.online_type == "lmdb"
    assert config.offline_engine == "duckdb"
    assert config.registry_url == str(tmp_path.resolve() / ".strato" / "registry.db")
    assert config.online_options.path == str(tmp_path.resolve() / ".strato" / "online")  # type: ignore[attr-defined]
    assert {source for _, _, source in config.describe()} == {"default"}


def test_precedence_yaml_then_environment_then_arguments(tmp_path: Path) -> None:
    write_default_config(tmp_path, "from_yaml")
    assert load_config(tmp_path, environ={}).project == "from_yaml"
    env = {"STRATO_PROJECT": "from_env", "STRATO_ONLINE__MAP_SIZE_GB": "2"}
    config = load_config(tmp_path, environ=env)
    assert config.project == "from_env"
    assert config.online_options.map_size_gb == 2.0  # type: ignore[attr-defined]
    assert config.sources["project"] == "environment"
    assert config.sources["online.path"] == "strato.yaml"
    overridden = load_config(tmp_path, environ=env, overrides={"project": "from_arg"})
    assert overridden.project == "from_arg"
    assert overridden.sources["project"] == "argument"


def test_switching_backend_drops_the_old_backends_options(tmp_path: Path) -> None:
    """strato.yaml sets an LMDB path; STRATO_ONLINE__TYPE=memory must not hand it to the memory store."""
    write_default_config(tmp_path, "p")
    config = load_config(tmp_path, environ={"STRATO_ONLINE__TYPE": "memory"})
    assert config.online_type == "memory"
    assert "path" not in config.online_options.model_dump()
    by_argument = load_config(tmp_path, environ={}, overrides={"online.type": "memory"})
    assert by_argument.online_type == "memory"


def test_other_strato_variables_are_not_ours(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={"STRATO_DEBUG": "1", "STRATO_REPO": str(tmp_path)})
    assert config.project == "default"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("project: p\nonlin:\n  type: lmdb\n", r"unknown keys \['onlin'\]"),
        ("project: p\nonline: lmdb\n", r"'online' must be a mapping"),
        ("project: [unclosed\n", r"not valid YAML"),
        ("project: 9lives\n", r"project '9lives' is invalid"),
        ("project: p\nonline:\n  type: lmdb\n  map_sise_gb: 3\n", r"online\.map_sise_gb"),
    ],
)
def test_bad_configuration_names_the_setting(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "strato.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, environ={})


def test_misspelt_option_in_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"map_sise_gb"):
        load_config(tmp_path, environ={"STRATO_ONLINE__MAP_SISE_GB": "3"})


def test_unknown_backend_lists_the_registered_ones(tmp_path: Path) -> None:
    with pytest.raises(PluginNotFoundError, match=r"no online backend named 'nosuch'; registered: lmdb, memory"):
        load_config(tmp_path, environ={"STRATO_ONLINE__TYPE": "nosuch"})
