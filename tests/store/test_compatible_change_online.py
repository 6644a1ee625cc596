"""Design rule 6 online: after a compatible change, values written under the old schema read
the added fields as null — through both `to_numpy` paths and `to_dict` — until a write or a
materialization rewrites them in the new layout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, List, ReadStatus, String, Vector
from strato.config import write_default_config

USER = Entity("user", join_keys={"user_id": Int64})
V1 = FeatureView("s", entities=[USER], schema=[Field("a", Float64), Field("t", String)])
V2 = FeatureView(
    "s",
    entities=[USER],
    schema=[Field("a", Float64), Field("b", Int64), Field("t", String), Field("l", List(Int64)), Field("v", Vector(2))],
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    write_default_config(tmp_path, "p")
    with FeatureStore(tmp_path) as s:
        yield s


def _old_rows(store: FeatureStore, users: int) -> datetime:
    when = datetime.now(UTC) - timedelta(minutes=5)
    store.apply([USER, V1])
    store.write(
        "s",
        pd.DataFrame(
            {
                "user_id": range(users),
                "event_timestamp": [when] * users,
                "a": [float(i) for i in range(users)],
                "t": [f"u{i}" for i in range(users)],
            }
        ),
    )
    plan = store.apply([USER, V2])
    assert [c.details for c in plan.changes if c.name == "s"] == [("adds field b", "adds field l", "adds field v")]
    return when


@pytest.mark.parametrize("users", [1, 40])  # the row-by-row and the vectorized to_numpy paths
def test_old_values_read_added_fields_as_null(store: FeatureStore, users: int) -> None:
    _old_rows(store, users)
    rows = [{"user_id": i} for i in range(users)] + [{"user_id": 999}]
    response = store.get_online_features(["s:a", "s:b", "s:t", "s:l", "s:v"], rows)
    data = response.to_dict()
    assert data["a"] == [float(i) for i in range(users)] + [None]
    assert data["t"] == [f"u{i}" for i in range(users)] + [None]
    assert data["b"] == data["l"] == data["v"] == [None] * (users + 1)
    assert response.statuses()["b"] == [ReadStatus.PRESENT] * users + [ReadStatus.NOT_FOUND]
    matrix = store.get_online_features(["s:b", "s:a"], rows).to_numpy()
    assert np.isnan(matrix[:, 0]).all()
    np.testing.assert_array_equal(matrix[:users, 1], np.arange(users, dtype=float))


def test_materialize_rewrites_old_values_in_the_new_layout(store: FeatureStore) -> None:
    _old_rows(store, 3)
    codec = store.catalog.codec(store.get_feature_view("s"))
    table = store.get_feature_view("s").table_name
    keys = codec.keys.encode_rows([{"user_id": i} for i in range(3)])
    assert codec.stale(store.online_store.read(table, keys)) == [0, 1, 2]
    assert store.materialize(None, datetime.now(UTC), progress=False).rows == {"s": 3}
    assert codec.stale(store.online_store.read(table, keys)) == []
    assert store.get_online_features(["s:a", "s:b"], [{"user_id": 2}]).to_dict() == {
        "user_id": [2],
        "a": [2.0],
        "b": [None],
    }


def test_new_writes_fill_the_added_fields(store: FeatureStore) -> None:
    _old_rows(store, 2)
    store.write(
        "s",
        pd.DataFrame(
            {
                "user_id": [1],
                "event_timestamp": [datetime.now(UTC)],
                "a": [5.0],
                "b": [7],
                "t": ["z"],
                "l": [[1, 2]],
                "v": [[0.5, 1.5]],
            }
        ),
    )
    data = store.get_online_features(["s:a", "s:b", "s:l", "s:v"], [{"user_id": 0}, {"user_id": 1}]).to_dict()
    assert data == {"user_id": [0, 1], "a": [0.0, 5.0], "b": [None, 7], "l": [None, [1, 2]], "v": [None, [0.5, 1.5]]}
