"""`prune(table, older_than_us)`: deletes exactly the values whose event time is before the
cut — in that table and project only — and reports how many; later reads find them absent."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato.definitions.feature_view import FeatureView
from strato.online.base import OnlineStore
from strato.online.codec import ViewCodec, header

from .conftest import Backend
from .test_expiry import NOW_US, view, write

FV = view(timedelta(hours=1))
OTHER = FeatureView("other_scores", entities=FV.entities, schema=FV.schema)


def _keys(users: list[int]) -> list[bytes]:
    codec = ViewCodec(FV)
    return [codec.keys.encode_row({"user_id": u}, i) for i, u in enumerate(users)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ages_min=st.dictionaries(st.integers(0, 500), st.integers(0, 180), max_size=60),
    cut_min=st.integers(0, 200),
)
def test_prune_deletes_exactly_the_old_values(
    online_store: OnlineStore, ages_min: dict[int, int], cut_min: int
) -> None:
    online_store.drop(FV.table_name)
    write(online_store, FV, {u: timedelta(minutes=m) for u, m in ages_min.items()})
    cut_us = NOW_US - cut_min * 60_000_000
    expected_gone = {u for u, m in ages_min.items() if NOW_US - m * 60_000_000 < cut_us}
    assert online_store.prune(FV.table_name, cut_us) == len(expected_gone)
    users = sorted(ages_min)
    values = online_store.read(FV.table_name, _keys(users))
    assert {u for u, v in zip(users, values, strict=True) if v is None} == expected_gone
    assert all(header(v)[0] >= cut_us for v in values if v is not None)
    assert online_store.prune(FV.table_name, cut_us) == 0  # nothing left to prune


def test_prune_touches_one_table_of_one_project(online_backend: Backend) -> None:
    mine, theirs = online_backend.open("contract"), online_backend.open("elsewhere")
    old = {1: timedelta(hours=5), 2: timedelta(hours=6)}
    for store in (mine, theirs):
        write(store, FV, old)
        write(store, OTHER, old)
    assert mine.prune(FV.table_name, NOW_US) == 2
    assert mine.read(FV.table_name, _keys([1, 2])) == [None, None]
    assert None not in mine.read(OTHER.table_name, _keys([1, 2]))
    assert None not in theirs.read(FV.table_name, _keys([1, 2]))


def test_prune_of_an_unknown_table_is_zero(online_store: OnlineStore) -> None:
    assert online_store.prune("never_written__v1", NOW_US) == 0
