"""Issue 7 item 5: names starting with ``__strato`` are Strato's own (its engines' internal
columns and tables), so a definition using one is refused; user names that merely look
internal (``__ev``, ``__row``) never collide with the engines' columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from store.helpers import USER
from strato import DefinitionError, Entity, FeatureService, FeatureStore, FeatureView, Field, Float64, Int64

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.mark.parametrize("name", ["__strato_rid", "__strato_t", "__STRATO_rid", "__stratoX"])
def test_a_feature_named_like_an_internal_column_is_refused(name: str) -> None:
    # Before: a feature `__strato_rid` came back from get_historical_features as the spine's row id.
    with pytest.raises(DefinitionError, match=f"{name!r} is reserved: names starting with '__strato'"):
        FeatureView("v", entities=[USER], schema=[Field(name, Float64)])


def test_join_keys_views_entities_services_and_time_columns_are_refused_too() -> None:
    with pytest.raises(DefinitionError, match="'__strato_spine' is reserved"):
        Entity("e", join_keys={"__strato_spine": Int64})
    with pytest.raises(DefinitionError, match="'__strato_v' is reserved"):
        FeatureView("__strato_v", entities=[USER], schema=[Field("x", Float64)])
    with pytest.raises(DefinitionError, match="'__strato_e' is reserved"):
        Entity("__strato_e", join_keys={"k": Int64})
    with pytest.raises(DefinitionError, match="'__strato_ts' in feature view 'v' is reserved"):
        FeatureView("v", entities=[USER], schema=[Field("x", Float64)], timestamp_field="__strato_ts")
    with pytest.raises(DefinitionError, match="'__strato_created' in feature view 'v' is reserved"):
        FeatureView("v", entities=[USER], schema=[Field("x", Float64)], created_timestamp_column="__strato_created")
    view = FeatureView("v", entities=[USER], schema=[Field("x", Float64)])
    with pytest.raises(DefinitionError, match="'__strato_s' is reserved"):
        FeatureService("__strato_s", features=[view])


def test_names_like_the_engines_scratch_columns_read_back_as_written(store: FeatureStore) -> None:
    # Keys and features named like the join's scratch columns before they were prefixed.
    key = Entity("thing", join_keys={"__ev": Int64})
    view = FeatureView(
        "odd", entities=[key], schema=[Field("__c", Float64), Field("__w", Float64), Field("__row", Int64)]
    )
    store.apply([key, view])
    rows = [
        {"__ev": k, "event_timestamp": T0 + timedelta(hours=h), "__c": 10.0 * k + h, "__w": -1.0 * h, "__row": h}
        for k in (1, 2)
        for h in (0, 1)
    ]
    rows.append({**rows[-1], "__c": 99.0})  # an in-batch tie: the last row wins
    result = store.write("odd", rows)
    assert (result.rows, result.superseded) == (4, 1)
    spine = pd.DataFrame({"__ev": [1, 2, 1], "event_timestamp": [T0, T0 + timedelta(hours=2), T0 - timedelta(1)]})
    got = store.get_historical_features(spine, ["odd:__c", "odd:__w", "odd:__row"]).to_df()
    assert got["__c"].tolist()[:2] == [10.0, 99.0]
    assert pd.isna(got["__c"].iloc[2])
    assert got["__row"].tolist()[:2] == [0, 1]
    store.materialize(None, datetime.now(UTC), progress=False)
    values = store.get_online_features(["odd:__c", "odd:__row"], [{"__ev": 1}, {"__ev": 2}]).to_dict()
    assert values == {"__ev": [1, 2], "__c": [11.0, 99.0], "__row": [1, 1]}
