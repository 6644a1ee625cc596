"""Data quality on every write: rules per field (`Expect`) and per view (`unique_events`).

A batch that breaks a rule is refused whole: the error names the view, the field, the rule and
sample rows, and the history, the online store and the registry's statistics are exactly as
before. A view with ``on_invalid="quarantine"`` sets the offending rows aside instead; the
test checks they are exactly the rows a brute-force, row-by-row oracle flags, and that the
rest is written as if the batch had held only them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.helpers import USER
from strato import Expect, FeatureStore, FeatureView, Field, Float64, Int64, String, ValidationError
from strato.config import write_default_config

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
RULES = {
    "amount": Expect(ge=0, lt=1000),
    "country": Expect(allowed=["FR", "DE", "US"], max_null_fraction=0.5),
    "code": Expect(regex=r"[A-Z]{3}"),
}


def tx_view(on_invalid: str = "reject", *, unique: bool = True) -> FeatureView:
    return FeatureView(
        "tx",
        entities=[USER],
        schema=[
            Field("amount", Float64, expect=RULES["amount"]),
            Field("country", String, expect=RULES["country"]),
            Field("code", String, expect=RULES["code"]),
            Field("n", Int64),
        ],
        on_invalid=on_invalid,  # type: ignore[arg-type]
        unique_events=unique,
    )


def row(
    user: int, hours: int, amount: float | None = 5.0, country: str | None = "FR", code: str | None = "ABC"
) -> dict[str, Any]:
    return {
        "user_id": user,
        "event_timestamp": BASE + timedelta(hours=hours),
        "amount": amount,
        "country": country,
        "code": code,
        "n": hours,
    }


def oracle(rows: list[dict[str, Any]]) -> list[bool]:
    """Row by row, in plain Python: which rows break a rule (see monitoring.validation)."""
    bad = [False] * len(rows)
    nulls = sum(r["country"] is None for r in rows)
    too_many_nulls = bool(rows) and nulls / len(rows) > 0.5
    identities: dict[tuple[int, datetime], int] = {}
    for r in rows:
        key = (r["user_id"], r["event_timestamp"])
        identities[key] = identities.get(key, 0) + 1
    for i, r in enumerate(rows):
        a, c, code = r["amount"], r["country"], r["code"]
        if a is not None and (math.isnan(a) or not 0 <= a < 1000):
            bad[i] = True
        if c is not None and c not in ("FR", "DE", "US"):
            bad[i] = True
        if c is None and too_many_nulls:
            bad[i] = True
        if code is not None and not re.fullmatch(r"[A-Z]{3}", code):
            bad[i] = True
        if identities[(r["user_id"], r["event_timestamp"])] > 1:
            bad[i] = True
    return bad


def state(store: FeatureStore) -> tuple[Any, ...]:
    fv = store.get_feature_view("tx")
    online = store.get_online_features(["tx:amount", "tx:n"], [{"user_id": u} for u in range(6)]).to_dict()
    return store.delta.version(fv.table_name), online, store.write_stats("tx"), store.quarantined("tx").num_rows


def test_a_batch_breaking_a_rule_is_refused_whole_with_a_report(store: FeatureStore) -> None:
    store.apply([USER, tx_view()])
    store.write("tx", [row(1, 1), row(2, 1)])
    before = state(store)
    batch = [row(1, 2), row(2, 2, amount=-3.0), row(3, 2, code="abcd"), row(4, 2, amount=2000.0)]
    with pytest.raises(ValidationError) as caught:
        store.write("tx", batch)
    message = str(caught.value)
    assert "'tx'" in message
    assert "nothing written" in message
    assert "field 'amount' breaks ge=0 lt=1000: 2 of 4 rows" in message
    assert "row 1 (amount=-3.0)" in message
    assert "row 3 (amount=2000.0)" in message
    assert "field 'code' breaks regex='[A-Z]{3}': 1 of 4 rows, e.g. row 2 (code='abcd')" in message
    assert {(f.field, f.rows) for f in caught.value.failures} == {("amount", 2), ("code", 1)}  # type: ignore[attr-defined]
    assert state(store) == before


def test_repeated_events_are_refused_when_the_view_asks_for_unique_events(store: FeatureStore) -> None:
    store.apply([USER, tx_view()])
    with pytest.raises(ValidationError, match=r"\(user_id, event_timestamp\) repeats within the batch"):
        store.write("tx", [row(1, 1), row(1, 1, amount=6.0)])
    assert store.delta.version(store.get_feature_view("tx").table_name) is None


def test_without_unique_events_repeats_keep_the_last_as_before(store: FeatureStore) -> None:
    store.apply([USER, tx_view(unique=False)])
    result = store.write("tx", [row(1, 1), row(1, 1, amount=6.0)])
    assert (result.rows, result.superseded, result.quarantined) == (1, 1, 0)


@pytest.mark.parametrize("unique", [True, False])
def test_too_many_nulls_is_a_batch_rule(store: FeatureStore, unique: bool) -> None:
    store.apply([USER, tx_view(unique=unique)])
    store.write("tx", [row(1, 1, country=None), row(2, 1)])  # 50%: allowed
    with pytest.raises(ValidationError, match=r"max_null_fraction=0.5 \(batch has 66.7% nulls\)"):
        store.write("tx", [row(1, 2, country=None), row(2, 2, country=None), row(3, 2)])


_values = st.fixed_dictionaries(
    {
        "user": st.integers(0, 5),
        "hours": st.integers(0, 3),
        "amount": st.one_of(st.none(), st.sampled_from([0.0, 999.9, 1000.0, -0.1, float("nan")]), st.floats(0, 999)),
        "country": st.one_of(st.none(), st.sampled_from(["FR", "DE", "US", "XX", ""])),
        "code": st.one_of(st.none(), st.sampled_from(["ABC", "AB", "ABCD", "abc", "A1C"])),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(_values, min_size=1, max_size=12))
def test_quarantine_sets_aside_exactly_the_rows_the_oracle_flags(
    tmp_path_factory: pytest.TempPathFactory, batch: list[dict[str, Any]]
) -> None:
    repo = tmp_path_factory.mktemp("repo")
    write_default_config(repo, "proj")
    with FeatureStore(repo) as store:
        store.apply([USER, tx_view("quarantine")])
        rows = [row(v["user"], v["hours"], v["amount"], v["country"], v["code"]) for v in batch]
        flags = oracle(rows)
        result = store.write("tx", rows)
        good = [r for r, bad in zip(rows, flags, strict=True) if not bad]
        expected = [r for r, bad in zip(rows, flags, strict=True) if bad]
        assert (result.rows, result.quarantined) == (len(good), len(expected))
        aside = store.quarantined("tx").to_pylist()
        assert sorted(map(_ident, aside)) == sorted(map(_ident, expected))
        assert all(r["quarantine_reason"] for r in aside)
        # The written part is exactly the good rows: nothing of the bad ones reached history.
        assert sorted(map(_ident, _history(store))) == sorted(map(_ident, good))


def test_quarantined_rows_say_which_rules_they_broke(store: FeatureStore) -> None:
    store.apply([USER, tx_view("quarantine")])
    result = store.write("tx", [row(1, 1), row(2, 1, amount=-1.0, code="x")])
    assert (result.rows, result.quarantined) == (1, 1)
    [aside] = store.quarantined("tx").to_pylist()
    assert aside["user_id"] == 2
    assert aside["amount"] == -1.0
    assert aside["quarantine_reason"] == "amount: ge=0 lt=1000; code: regex='[A-Z]{3}'"
    assert isinstance(aside["quarantined_at"], datetime)
    online = store.get_online_features(["tx:amount"], [{"user_id": 1}, {"user_id": 2}]).to_dict()
    assert online["amount"] == [5.0, None]


def test_a_retried_write_does_not_quarantine_twice(store: FeatureStore) -> None:
    store.apply([USER, tx_view("quarantine")])
    batch = [row(1, 1), row(2, 1, amount=-1.0)]
    first = store.write("tx", batch, idempotency_key="file-1")
    again = store.write("tx", batch, idempotency_key="file-1")
    assert (first.quarantined, again.already_written) == (1, True)
    assert store.quarantined("tx").num_rows == 1


def test_each_history_write_records_statistics(store: FeatureStore) -> None:
    store.apply([USER, tx_view("quarantine")])
    first = store.write("tx", [row(u, 1, amount=float(u)) for u in range(4)])
    second = store.write("tx", [row(1, 2, amount=10.0), row(2, 2, amount=None), row(3, 2, amount=-5.0)])
    stats = store.write_stats("tx")
    assert [s.version for s in stats] == [second.table_version, first.table_version]
    latest, earlier = stats
    assert (latest.rows, latest.quarantined) == (2, 1)
    assert latest.columns["amount"]["count"] == 2
    assert latest.columns["amount"]["nulls"] == 1
    assert earlier.columns["amount"] | {"quantiles": None} == {
        "count": 4,
        "nulls": 0,
        "min": 0.0,
        "max": 3.0,
        "mean": 1.5,
        "std": pytest.approx(math.sqrt(1.25)),
        "quantiles": None,
    }
    assert earlier.columns["country"]["distinct"] == 1
    # An online-only write commits no history and records nothing.
    store.write("tx", [row(1, 3)], to="online")
    assert len(store.write_stats("tx")) == 2


def _ident(r: dict[str, Any]) -> str:
    """A row's written values as sortable text (NaN equal to NaN, None beside strings)."""
    a = r["amount"]
    return repr(
        (
            r["user_id"],
            r["event_timestamp"].timestamp(),
            "nan" if isinstance(a, float) and math.isnan(a) else a,
            r["country"],
            r["code"],
        )
    )


def _history(store: FeatureStore) -> list[dict[str, Any]]:
    fv = store.get_feature_view("tx")
    snapshot = store.delta.snapshot(fv.table_name)
    if snapshot is None:
        return []
    rows = store.offline_engine.read(snapshot).sort_by([("created_timestamp", "ascending")]).to_pylist()
    return rows
