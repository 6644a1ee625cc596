"""Configuration reaches the engines as written (issue 7 item 13): a mapping under `registry:`
and `STRATO_REGISTRY__URL` were ignored (the default SQLite file was used instead), and
`offline.path: s3://bucket/features` became `<repo>/s3:/bucket/features`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato import FeatureStore
from strato.errors import ConfigError

from .helpers import USER, stats_view

ROW = {"user_id": 1, "x": 7, "tag": "a", "score": 0.5}


def write_one(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    store.write("stats", [{**ROW, "event_timestamp": datetime.now(UTC)}])


def test_a_registry_mapping_is_where_definitions_go(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text("project: p\nregistry:\n  path: meta/definitions.db\n")
    with FeatureStore(tmp_path) as store:
        write_one(store)
    assert (tmp_path / "meta" / "definitions.db").is_file()
    assert not (tmp_path / ".strato" / "registry.db").exists()


def test_strato_registry_url_is_where_definitions_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "strato.yaml").write_text("project: p\n")
    elsewhere = tmp_path / "shared" / "registry.db"
    monkeypatch.setenv("STRATO_REGISTRY__URL", f"sqlite:///{elsewhere}")
    with FeatureStore(tmp_path) as store:
        assert store.config.registry_url == f"sqlite:///{elsewhere}"
        assert store.config.sources["registry"] == "environment"
        write_one(store)
    assert elsewhere.is_file()
    assert not (tmp_path / ".strato" / "registry.db").exists()


def test_an_offline_file_uri_is_used_as_is(tmp_path: Path) -> None:
    history = tmp_path / "elsewhere" / "history"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "strato.yaml").write_text(f"project: p\noffline:\n  path: file://{history}\n")
    with FeatureStore(repo) as store:
        assert store.config.offline_path == f"file://{history}"
        write_one(store)
        assert store.sql("select x from stats").to_pylist() == [{"x": 7}]
    assert any(history.rglob("_delta_log"))
    assert not any(p.name in ("file:", "elsewhere") for p in repo.rglob("*"))


def test_an_s3_offline_path_stays_a_uri(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text("project: p\noffline:\n  path: s3://bucket/features\n")
    with FeatureStore(tmp_path) as store:
        assert store.config.offline_path == "s3://bucket/features"
        assert ("offline.path", "s3://bucket/features", "strato.yaml") in store.config.describe()
        assert store.delta.root == "s3://bucket/features"
    assert not (tmp_path / "s3:").exists()


def test_lmdb_refuses_a_remote_uri_and_takes_a_file_uri(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text("project: p\nonline:\n  type: lmdb\n  path: s3://bucket/online\n")
    with pytest.raises(ConfigError, match=r"strato\.yaml: online\.path: LMDB needs a local folder, not the URI"):
        FeatureStore(tmp_path)
    online = tmp_path / "kv"
    (tmp_path / "strato.yaml").write_text(f"project: p\nonline:\n  type: lmdb\n  path: file://{online}\n")
    with FeatureStore(tmp_path) as store:
        write_one(store)
        assert store.get_online_features(["stats:x"], [{"user_id": 1}]).to_dict()["x"] == [7]
    assert (online / "data.mdb").is_file()
