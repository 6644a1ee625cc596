"""Issue 7, item 6: a write either lands in both stores, or says exactly what it left behind.

Engine limits are checked before history is committed (so "nothing was written" is true);
after the commit, a failure names the version and the command that finishes it; and the
same batch written twice under one idempotency key is stored once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from strato import (
    BackendFailure,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    Int64,
    OnlineBehindError,
    SchemaError,
    String,
)
from strato.config import write_default_config

from .helpers import USER, online, stats_view

EVENT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
DEVICE = Entity("device", join_keys={"device_id": String})
DEVICES = FeatureView("devices", entities=[DEVICE], schema=[Field("x", Int64)])


def rows(n: int, *, x: int = 1) -> list[dict[str, Any]]:
    return [{"user_id": u, "event_timestamp": EVENT, "x": x, "tag": "t", "score": 1.0} for u in range(n)]


def history_rows(store: FeatureStore, view: str) -> int:
    return int(store.sql(f"select count(*) as n from {view}").column("n")[0].as_py())


def test_a_key_longer_than_the_online_store_allows_is_refused_before_anything_is_written(
    store: FeatureStore,
) -> None:
    store.apply([DEVICE, DEVICES])
    limit = store.online_store.key_limit(store.get_feature_view("devices").table_name)
    assert limit is not None
    batch = [
        {"device_id": "ok", "event_timestamp": EVENT, "x": 1},
        {"device_id": "d" * (limit + 1), "event_timestamp": EVENT, "x": 2},
    ]
    with pytest.raises(SchemaError, match=r"row 1: join key .* bytes encoded; .* at most \d+") as refusal:
        store.write("devices", batch)
    assert len(str(refusal.value)) < 400  # the key is shown shortened, not in full
    assert store.delta.version(store.get_feature_view("devices").table_name) is None  # history untouched
    assert store.get_online_features(["devices:x"], [{"device_id": "ok"}]).to_dict()["x"] == [None]
    store.write("devices", [{"device_id": "d" * limit, "event_timestamp": EVENT, "x": 3}])  # the limit itself fits
    assert store.get_online_features(["devices:x"], [{"device_id": "d" * limit}]).to_dict()["x"] == [3]


def test_a_write_too_big_for_the_online_map_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    write_default_config(tmp_path, "tiny")
    with FeatureStore(tmp_path, online__map_size_gb=0.002) as store:  # 2 MiB, as in the report
        store.apply([USER, stats_view()])
        with pytest.raises(BackendFailure, match=r"online.map_size_gb.*nothing was written"):
            store.write("stats", rows(50_000))
        assert store.delta.version(store.get_feature_view("stats").table_name) is None
        assert store.write("stats", rows(100)).rows == 100  # a batch that fits still goes in
        assert online(store, ["stats:x"], [99])["x"] == [1]


def test_the_same_idempotency_key_is_stored_once(store: FeatureStore) -> None:
    store.apply([USER, stats_view()])
    first = store.write("stats", rows(3), idempotency_key="batch-1")
    again = store.write("stats", rows(3), idempotency_key="batch-1")
    assert (first.already_written, again.already_written) == (False, True)
    assert again.table_version == first.table_version == 0
    assert history_rows(store, "stats") == 3
    other = store.write("stats", rows(3, x=2), idempotency_key="batch-2")
    assert (other.already_written, other.table_version) == (False, 1)
    assert history_rows(store, "stats") == 6


def test_a_second_attempt_finishes_an_interrupted_online_step(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply([USER, stats_view()])
    with monkeypatch.context() as patch:
        patch.setattr(store.online_store, "write", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            store.write("stats", rows(4, x=7), idempotency_key="k")
    assert online(store, ["stats:x"], [0])["x"] == [None]
    retried = store.write("stats", rows(4, x=7), idempotency_key="k")
    assert retried.already_written
    assert retried.online_rows == 4
    assert online(store, ["stats:x"], [0, 3])["x"] == [7, 7]
    assert history_rows(store, "stats") == 4
    # The retry stamps the first attempt's write time, so history and online agree on ties.
    created = store.sql("select distinct created_timestamp from stats").column(0).to_pylist()
    assert len(created) == 1


def test_an_online_behind_error_is_a_backend_error_naming_what_to_run(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply([USER, stats_view()])
    monkeypatch.setattr(store.online_store, "write", lambda *a, **k: (_ for _ in ()).throw(BackendFailure("boom")))
    with pytest.raises(OnlineBehindError) as failure:
        store.write("stats", rows(2))
    assert (failure.value.view, failure.value.table_version) == ("stats", 0)


def test_offline_only_writes_keep_table_versions_in_order(store: FeatureStore) -> None:
    """A plain pyarrow batch too: idempotency keys work whatever the input type."""
    store.apply([USER, stats_view()])
    batch = pa.Table.from_pylist(rows(2))
    assert store.write("stats", batch, to="offline", idempotency_key="p").table_version == 0
    assert store.write("stats", batch, to="offline", idempotency_key="p").already_written
    assert store.delta.version(store.get_feature_view("stats").table_name) == 0
