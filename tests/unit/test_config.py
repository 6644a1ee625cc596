"""`config.load_config`: defaults < strato.yaml < STRATO_* environment < arguments, with sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strato import plugins
from strato.config import default_project_name, load_config, write_default_config
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
        ("project: p\nonlin:\n  type: lmdb\n", r"strato\.yaml: onlin: unknown setting; did you mean 'online'\?"),
        ("project: p\nonline: lmdb\n", r"strato\.yaml: online: must be a mapping"),
        ("project: [unclosed\n", r"strato\.yaml: not valid YAML: .* at line 2"),
        ("project: 9lives\n", r"strato\.yaml: project: '9lives' is invalid"),
        (
            "project: p\nonline:\n  type: lmdb\n  map_sise_gb: 3\n",
            r"strato\.yaml: online\.map_sise_gb: unknown option .*did you mean 'map_size_gb'\?",
        ),
        ("project: p\nonline:\n  type: lmdb\n  map_size_gb: lots\n", r"strato\.yaml: online\.map_size_gb: .*'lots'"),
        ("project: p\nregistry:\n  uri: postgresql://h/db\n", r"registry\.uri: unknown registry option.*'url'\?"),
        ("project: p\nregistry:\n  url: r.db\n", r"registry\.url: 'r\.db' is not a URL.*registry\.path"),
        ("project: p\nregistry:\n  url: sqlite:///a.db\n  path: b.db\n", r"give the registry once"),
        ("project: p\nregistry: {}\n", r"registry: an empty mapping"),
        ("project: p\nregistry: [a, b]\n", r"registry: expected a path or a database URL"),
        ("project: true\n", r"project: expected a name, got bool"),
        ("project:\n", r"project: has no value"),
        ("project: p\noffline:\n", r"offline: must be a mapping"),
        ("project: p\nonline:\n  type:\n", r"online\.type: has no value"),
        ("project: p\noffline:\n  path: 5\n", r"offline\.path: expected a string, got int"),
        ("project: p\nproject: q\n", r"not valid YAML: duplicate key 'project' \(lines 1 and 2\)"),
        ("project: p\nonline:\n  type: lmdb\n  type: memory\n", r"duplicate key 'type' \(lines 3 and 4\)"),
        ("registry: .strato/registry.db\n", r"strato\.yaml: project: missing"),
        ("- project: p\n", r"expected a mapping of settings at the top level, got list"),
        ("just some words\n", r"expected a mapping of settings at the top level, got str"),
        ("", r"strato\.yaml: the file is empty"),
        ("# only a comment\n", r"strato\.yaml: the file is empty"),
        # Truncated mid-file: what a half-written or cut-off copy looks like.
        ("project: demo\nregistry: .strato/registry.db\noffline:\n  path: '.strato/off", r"not valid YAML"),
        ("project: demo\nonline:\n  type: lm", r"no online backend named 'lm'"),
    ],
)
def test_bad_configuration_names_the_setting(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "strato.yaml").write_text(yaml_text)
    with pytest.raises((ConfigError, PluginNotFoundError), match=message) as caught:
        load_config(tmp_path, environ={})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"not a text file \(byte 0 is not UTF-8\)"),
        (b"project: p\n\x00\x00", r"not a text file \(byte 11 is NUL\)"),
        (bytes(range(256)), r"not a text file"),
    ],
)
def test_a_binary_strato_yaml_is_named_not_a_traceback(tmp_path: Path, data: bytes, message: str) -> None:
    (tmp_path / "strato.yaml").write_bytes(data)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(tmp_path.resolve()))}/strato\.yaml: {message}"):
        load_config(tmp_path, environ={})


def test_a_bom_is_tolerated(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_bytes("\ufeffproject: with_bom\n".encode())
    assert load_config(tmp_path, environ={}).project == "with_bom"


def test_registry_as_a_mapping_is_honoured(tmp_path: Path) -> None:
    """Issue 7 item 13: a mapping under `registry:` was ignored and the default SQLite file used."""
    (tmp_path / "strato.yaml").write_text("project: p\nregistry:\n  url: postgresql://db.internal/features\n")
    config = load_config(tmp_path, environ={})
    assert config.registry_url == "postgresql://db.internal/features"
    assert config.sources["registry"] == "strato.yaml"
    (tmp_path / "strato.yaml").write_text("project: p\nregistry:\n  path: meta/registry.db\n")
    assert load_config(tmp_path, environ={}).registry_url == str(tmp_path.resolve() / "meta" / "registry.db")


@pytest.mark.parametrize("variable", ["STRATO_REGISTRY__URL", "STRATO_REGISTRY"])
def test_registry_from_the_environment_is_honoured(tmp_path: Path, variable: str) -> None:
    """Issue 7 item 13: STRATO_REGISTRY__URL was ignored."""
    (tmp_path / "strato.yaml").write_text("project: p\nregistry:\n  path: meta/registry.db\n")
    config = load_config(tmp_path, environ={variable: "postgresql://db.internal/features"})
    assert config.registry_url == "postgresql://db.internal/features"
    assert config.sources["registry"] == "environment"
    path = load_config(tmp_path, environ={"STRATO_REGISTRY__PATH": "other.db"})
    assert path.registry_url == str(tmp_path.resolve() / "other.db")
    argument = load_config(tmp_path, environ={variable: "sqlite:///x.db"}, overrides={"registry.path": "arg.db"})
    assert argument.registry_url == str(tmp_path.resolve() / "arg.db")
    assert argument.sources["registry"] == "argument"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/features",
        "gs://bucket/features",
        "az://container/features",
        "abfss://container@account.dfs.core.windows.net/features",
        "file:///srv/features",
    ],
)
def test_uris_are_kept_verbatim(tmp_path: Path, uri: str) -> None:
    """Issue 7 item 13: `offline.path: s3://bucket/features` became `<repo>/s3:/bucket/features`."""
    (tmp_path / "strato.yaml").write_text(f"project: p\noffline:\n  path: {uri}\n")
    assert load_config(tmp_path, environ={}).offline_path == uri
    assert load_config(tmp_path, environ={"STRATO_OFFLINE__PATH": uri + "2"}).offline_path == uri + "2"
    assert load_config(tmp_path, environ={"STRATO_REGISTRY": "postgresql://u@h/db"}).registry_url == (
        "postgresql://u@h/db"
    )


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("STRATO_ONLNE__TYPE", r"STRATO_ONLNE__TYPE: onlne\.type: unknown setting; did you mean 'online'\?"),
        ("STRATO_PROJCT", r"STRATO_PROJCT: projct: unknown setting; did you mean 'project'\?"),
        ("STRATO_REGISTRY__URI", r"STRATO_REGISTRY__URI: registry\.uri: unknown registry option; did you mean 'url'"),
        ("STRATO_ONLINE", r"STRATO_ONLINE: online: must be a mapping of options"),
        ("STRATO_PROJECT__NAME", r"STRATO_PROJECT__NAME: project\.name: project is a name"),
    ],
)
def test_misspelt_environment_variables_are_refused(tmp_path: Path, variable: str, message: str) -> None:
    write_default_config(tmp_path, "p")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, environ={variable: "postgresql://h/db"})


def test_a_bad_argument_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"argument: onlin\.type: unknown setting; did you mean 'online'\?"):
        load_config(tmp_path, environ={}, overrides={"onlin.type": "memory"})
    with pytest.raises(ConfigError, match=r"argument: online\.path: unknown option for the 'memory' online backend"):
        load_config(tmp_path, environ={}, overrides={"online.type": "memory", "online.path": "x"})


def test_yaml_settings_round_trip_every_top_key(tmp_path: Path) -> None:
    """Every setting strato.yaml accepts is honoured: nothing accepted and then dropped."""
    (tmp_path / "strato.yaml").write_text(
        "project: all_keys\n"
        "registry: meta/r.db\n"
        "offline:\n  path: hist\n  engine: duckdb\n"
        "online:\n  type: lmdb\n  path: ~/kv\n  map_size_gb: 3\n  max_readers: 9\n"
        "write:\n  max_future_seconds: 60\n"
    )
    config = load_config(tmp_path, environ={})
    assert config.max_future_seconds == 60
    repo = tmp_path.resolve()
    assert (config.project, config.registry_url, config.offline_path) == (
        "all_keys",
        f"{repo}/meta/r.db",
        f"{repo}/hist",
    )
    options = config.online_options.model_dump()
    assert {k: options[k] for k in ("path", "map_size_gb", "max_readers")} == {
        "path": str(Path("~/kv").expanduser()),
        "map_size_gb": 3.0,
        "max_readers": 9,
    }
    assert all(source == "strato.yaml" for key, _, source in config.describe() if key in config.sources)


def test_default_project_name_is_a_valid_project(tmp_path: Path) -> None:
    for name in ["my-repo", "2024 features", "ünï", "x" * 100]:
        folder = tmp_path / name
        folder.mkdir()
        write_default_config(folder, default_project_name(folder))
        assert load_config(folder, environ={}).project == default_project_name(folder)


def test_misspelt_option_in_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"map_sise_gb"):
        load_config(tmp_path, environ={"STRATO_ONLINE__MAP_SISE_GB": "3"})


def test_unknown_backend_lists_the_registered_ones(tmp_path: Path) -> None:
    # Optional backends (aerospike, ...) join the list as they are registered: check the embedded two.
    with pytest.raises(
        PluginNotFoundError, match=r"no online backend named 'nosuch'; registered: .*lmdb, memory"
    ) as info:
        load_config(tmp_path, environ={"STRATO_ONLINE__TYPE": "nosuch"})
    assert str(info.value).split("registered: ", 1)[1].split(", ") == sorted(plugins.available("online"))
