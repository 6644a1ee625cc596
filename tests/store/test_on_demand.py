"""On-demand feature views through the store (SQLite registry, Delta + DuckDB, LMDB): every
mode online and offline, in feature services, their errors, and online/offline agreement
on the same inputs (hypothesis)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import odfv_defs as d
from store.helpers import same
from strato import FeatureService, FeatureStore, ReadStatus, SchemaError, TransformationError, UserError

NOW = datetime.now(UTC).replace(microsecond=0)
MODES = ["pandas_odfv", "python_odfv", "row_odfv", "arrow_odfv"]


@pytest.fixture
def odfv_store(store: FeatureStore) -> FeatureStore:
    store.apply([*d.ALL, d.wrong_type, d.missing_column])
    store.write(
        "stats",
        [
            {"user_id": 1, "event_timestamp": NOW - timedelta(hours=1), "x": 2, "tag": "a", "score": 1.5},
            {"user_id": 3, "event_timestamp": NOW - timedelta(hours=1), "x": 0, "tag": "c", "score": None},
        ],
    )
    return store


ROWS = [
    {"user_id": 1, "amount": 3.0, "n": 4},
    {"user_id": 2, "amount": 1.0, "n": 1},
    {"user_id": 3, "amount": 5, "n": 2},
]


@pytest.mark.parametrize("view", MODES)
def test_each_mode_computes_from_request_and_stored_features(odfv_store: FeatureStore, view: str) -> None:
    response = odfv_store.get_online_features(["stats:x", f"{view}:total"], ROWS)
    # user 2 is absent and user 3's score is null: the function sees nulls and says null.
    assert response.to_dict() == {"user_id": [1, 2, 3], "x": [2, None, 0], "total": [4.5, None, None]}
    assert response.feature_names == ["x", "total"]
    matrix = response.to_numpy()
    assert matrix[0].tolist() == [2.0, 4.5]
    assert math.isnan(matrix[1, 0])
    assert math.isnan(matrix[1, 1])
    assert response.to_arrow().column("total").to_pylist() == [4.5, None, None]
    assert response.to_df()["total"].tolist()[0] == 4.5
    statuses = response.statuses()
    assert statuses["x"] == [ReadStatus.PRESENT, ReadStatus.NOT_FOUND, ReadStatus.PRESENT]
    assert statuses["total"] == [ReadStatus.PRESENT] * 3


def test_order_names_and_request_only_views(odfv_store: FeatureStore) -> None:
    refs = ["pandas_odfv:label", "stats:tag", "request_only:doubled", "python_odfv:big"]
    response = odfv_store.get_online_features(refs, ROWS, full_feature_names=True)
    assert list(response.to_dict()) == [
        "user_id",
        "pandas_odfv__label",
        "stats__tag",
        "request_only__doubled",
        "python_odfv__big",
    ]
    assert response.to_dict()["pandas_odfv__label"] == ["1:4", "2:1", "3:2"]
    assert response.to_dict()["python_odfv__big"] == [8, None, 0]
    assert list(response.to_df().columns) == list(response.to_dict())
    alone = odfv_store.get_online_features(["request_only:doubled"], [{"amount": 1.5, "n": 1}]).to_dict()
    assert alone == {"doubled": [3.0]}


def test_feature_service_mixes_views_and_on_demand_views(odfv_store: FeatureStore) -> None:
    odfv_store.apply([FeatureService("svc", [d.STATS[["x"]], d.pandas_odfv[["total", "ratio"]]])])
    service = odfv_store.get_feature_service("svc")
    assert service.feature_refs == ("stats:x", "pandas_odfv:total", "pandas_odfv:ratio")
    got = odfv_store.get_online_features(service, ROWS).to_dict()
    assert got == {"user_id": [1, 2, 3], "x": [2, None, 0], "total": [4.5, None, None], "ratio": [1.5, None, None]}
    entity_df = pd.DataFrame({"user_id": [1], "event_timestamp": [NOW], "amount": [3.0], "n": [4]})
    training = odfv_store.get_historical_features(entity_df, service).to_df()
    assert training[["x", "total", "ratio"]].iloc[0].tolist() == [2, 4.5, 1.5]


def test_historical_uses_entity_columns_as_request_fields(odfv_store: FeatureStore) -> None:
    entity_df = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "event_timestamp": [NOW, NOW - timedelta(days=1), NOW],  # the second is before the write
            "amount": [3.0, 2.0, 1.0],
            "n": [4, 2, 1],
            "label_col": ["a", "b", "c"],
        }
    )
    ts = odfv_store.get_historical_features(
        entity_df, ["stats:x", "pandas_odfv:total", "row_odfv:total"], full_feature_names=True
    )
    df = ts.to_df()
    assert list(df.columns) == [*entity_df.columns, "stats__x", "pandas_odfv__total", "row_odfv__total"]
    assert df["pandas_odfv__total"].tolist()[0] == 4.5
    assert df["pandas_odfv__total"].isna().tolist() == [False, True, True]
    assert ts.feature_names == ("stats__x", "pandas_odfv__total", "row_odfv__total")
    assert set(ts.versions) == {"stats@v1"}
    with pytest.raises(UserError, match="appear twice"):
        odfv_store.get_historical_features(entity_df, ["pandas_odfv:total", "row_odfv:total"])
    with pytest.raises(UserError, match=r"missing column 'n'.*request field 'n'.*'python_odfv'"):
        odfv_store.get_historical_features(entity_df.drop(columns=["n"]), ["python_odfv:total"])


def test_function_errors_name_the_view(odfv_store: FeatureStore) -> None:
    with pytest.raises(
        TransformationError, match=r"'divides': its function divides\(\) raised ZeroDivisionError"
    ) as info:
        odfv_store.get_online_features(["divides:q"], [{"user_id": 3, "amount": 1.0, "n": 1}])
    assert info.value.view == "divides"
    assert isinstance(info.value, UserError)
    with pytest.raises(TransformationError, match=r"'wrong_type', output 'q'.*string.*int64"):
        odfv_store.get_online_features(["wrong_type:q"], ROWS)
    with pytest.raises(TransformationError, match=r"'missing_column': its function returned no column 'r'"):
        odfv_store.get_online_features(["missing_column:r"], ROWS)
    entity_df = pd.DataFrame({"user_id": [3], "event_timestamp": [NOW], "amount": [1.0], "n": [1]})
    with pytest.raises(TransformationError, match=r"'divides'.*ZeroDivisionError"):
        odfv_store.get_historical_features(entity_df, ["divides:q"])


def test_request_field_errors_name_the_field(odfv_store: FeatureStore) -> None:
    with pytest.raises(UserError, match=r"missing request field 'amount', needed by on-demand feature view 'row_odfv'"):
        odfv_store.get_online_features(["row_odfv:total"], [{"user_id": 1, "n": 4}])
    with pytest.raises(SchemaError, match=r"request field 'amount'.*row 0"):
        odfv_store.get_online_features(["row_odfv:total"], [{"user_id": 1, "amount": "lots", "n": 4}])
    with pytest.raises(UserError, match="has no feature 'nope'"):
        odfv_store.get_online_features(["row_odfv:nope"], ROWS)


def test_stored_views_alone_read_as_before(odfv_store: FeatureStore) -> None:
    response = odfv_store.get_online_features(["stats:x", "stats:tag"], ROWS)
    assert type(response).__name__ == "OnlineResponse"
    assert response.to_dict() == {"user_id": [1, 2, 3], "x": [2, None, 0], "tag": ["a", None, "c"]}


# ---------------------------------------------------------------------- parity (hypothesis)

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
stored_rows = st.lists(
    st.tuples(st.integers(1, 5), st.integers(-50, 50), st.none() | finite),
    min_size=0,
    max_size=5,
    unique_by=lambda r: r[0],
)
requests = st.lists(st.tuples(st.integers(1, 6), finite, st.integers(-10, 10)), min_size=1, max_size=6)


@SETTINGS
@given(stored=stored_rows, request=requests)
def test_online_and_offline_agree_on_the_same_inputs(
    odfv_store: FeatureStore, stored: list[tuple[int, int, float | None]], request: list[tuple[int, float, int]]
) -> None:
    """The latest values online equal a point-in-time join as of now: given the same
    request fields, every mode's function gives the same outputs both ways."""
    event = NOW + timedelta(seconds=1 + len(stored))  # newer than the fixture's rows, older than "now" below
    rows = [{"user_id": u, "event_timestamp": event, "x": x, "tag": "t", "score": s} for u, x, s in stored]
    if rows:
        odfv_store.write("stats", rows)
    refs = [f"{v}:total" for v in MODES] + ["python_odfv:big", "pandas_odfv:ratio", "pandas_odfv:label"]
    entity_rows = [{"user_id": u, "amount": a, "n": n} for u, a, n in request]
    online = odfv_store.get_online_features(refs, entity_rows, full_feature_names=True).to_dict()
    spine = pd.DataFrame(entity_rows).assign(event_timestamp=datetime.now(UTC) + timedelta(seconds=30))
    offline = odfv_store.get_historical_features(spine, refs, full_feature_names=True).to_arrow().to_pydict()
    for name in online:
        assert same(online[name], offline[name]), (name, online[name], offline[name])


def test_changed_function_is_a_compatible_update(odfv_store: FeatureStore) -> None:
    from strato import Field, Float64, on_demand_feature_view

    @on_demand_feature_view(sources=[d.TXN], schema=[Field("doubled", Float64)], mode="python", singleton=True)
    def request_only(row: dict[str, Any]) -> dict[str, Any]:
        return {"doubled": row["amount"] * 3}

    plan = odfv_store.plan([request_only])
    (change,) = plan.changes
    assert change.action.value == "update"
    assert "function changed" in change.details[0]
    odfv_store.apply(plan)
    view = odfv_store.registry.get("on_demand_feature_view", "request_only")
    assert view.version == 2
    assert "* 3" in view.to_spec()["udf"]["source"]
    assert odfv_store.get_online_features(["request_only:doubled"], [{"amount": 1.0, "n": 1}]).to_dict() == {
        "doubled": [3.0]
    }
