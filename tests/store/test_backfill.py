"""Batch transformations (issue 8, item 4): a view computed by a SqlSource query over another
view and a CSV file, backfilled on a real repo (SQLite registry, Delta, DuckDB, LMDB).

The computed rows are checked against a brute-force pandas oracle over the same inputs;
idempotency by Delta versions and row identities; bad queries by the error and by nothing
written anywhere (no table, no interval, no online value).
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, SqlSource, String, intervals
from strato.access import admin
from strato.config import write_default_config
from strato.errors import AccessDeniedError, SchemaError, UserError

USER = Entity("user", join_keys={"user_id": Int64})
H = timedelta(hours=1)
T0 = (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)

PAYMENTS = FeatureView("payments", entities=[USER], schema=[Field("amount", Float64), Field("currency", String)])
HOURLY_SQL = """
    SELECT p.user_id, date_trunc('hour', p.event_timestamp) AS event_timestamp,
           sum(p.amount * fx.rate) AS spend_eur, count(*) AS n
    FROM payments p JOIN fx USING (currency)
    GROUP BY ALL
"""


def hourly(query: str = HOURLY_SQL, name: str = "hourly", **fields: Any) -> FeatureView:
    schema = [Field("spend_eur", Float64), Field("n", Int64)]
    return FeatureView(
        name,
        entities=[USER],
        schema=schema,
        source=SqlSource(query, inputs=[PAYMENTS, FileSource("fx.csv", "csv", name="fx")]),
        **fields,
    )


def payment_rows(start: datetime, hours: int, *, seed: int = 0) -> list[dict[str, Any]]:
    rows = []
    for h in range(hours):
        for u in range(1, 4):
            for minute in (5, 35):
                rows.append(
                    {
                        "user_id": u,
                        "event_timestamp": start + h * H + timedelta(minutes=minute + u),
                        "amount": float((seed + h * 7 + u * 3 + minute) % 50) + 0.25,
                        "currency": ("USD", "GBP", "EUR")[(h + u) % 3],
                    }
                )
    return rows


@pytest.fixture
def shop(store: FeatureStore, repo: Path) -> FeatureStore:
    pd.DataFrame({"currency": ["USD", "GBP", "EUR"], "rate": [0.5, 1.25, 1.0]}).to_csv(repo / "fx.csv", index=False)
    store.apply([USER, PAYMENTS, hourly()])
    store.write("payments", payment_rows(T0, 24))
    return store


def oracle(store: FeatureStore, repo: Path, start: datetime, end: datetime) -> pd.DataFrame:
    """Brute force: the payments' history (latest write per (user, time)), joined to the CSV
    in pandas, grouped by user and hour, kept where the hour is in [start, end)."""
    history = store.sql("SELECT * FROM payments").to_pandas()
    history = history.sort_values("created_timestamp").drop_duplicates(["user_id", "event_timestamp"], keep="last")
    fx = pd.read_csv(repo / "fx.csv")
    joined = history.merge(fx, on="currency")
    joined["hour"] = joined["event_timestamp"].dt.floor("h")
    joined["eur"] = joined["amount"] * joined["rate"]
    grouped = joined.groupby(["user_id", "hour"]).agg(spend_eur=("eur", "sum"), n=("eur", "size")).reset_index()
    grouped = grouped.rename(columns={"hour": "event_timestamp"})
    grouped = grouped[(grouped.event_timestamp >= start) & (grouped.event_timestamp < end)]
    return grouped.sort_values(["event_timestamp", "user_id"]).reset_index(drop=True)


def computed(store: FeatureStore) -> pd.DataFrame:
    got = store.sql("SELECT user_id, event_timestamp, spend_eur, n FROM hourly").to_pandas()
    return got.sort_values(["event_timestamp", "user_id"]).reset_index(drop=True)


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    assert got[["user_id", "event_timestamp", "n"]].astype(str).values.tolist() == (
        want[["user_id", "event_timestamp", "n"]].astype(str).values.tolist()
    )
    assert got["spend_eur"].round(9).tolist() == want["spend_eur"].round(9).tolist()


def test_backfill_computes_the_view_as_the_oracle_does_into_both_stores(shop: FeatureStore, repo: Path) -> None:
    # Rewrite some payments: the query must see each (user, time) once, its latest write.
    rewritten = [dict(r, amount=r["amount"] + 100) for r in payment_rows(T0 + 2 * H, 1)]
    shop.write("payments", rewritten)
    result = shop.backfill(T0, T0 + 10 * H, progress=False)
    done = result.views["hourly"]
    assert done.computed == ((T0, T0 + 10 * H),)
    want = oracle(shop, repo, T0, T0 + 10 * H)
    assert len(want) == 30  # 3 users x 10 hours
    assert done.rows == 30
    assert_matches(computed(shop), want)
    assert shop.computed_intervals("hourly") == [(T0, T0 + 10 * H)]
    # Online: per user, the latest computed hour.
    online = shop.get_online_features(["hourly:spend_eur", "hourly:n"], [{"user_id": u} for u in (1, 2, 3)])
    last = want[want.event_timestamp == T0 + 9 * H].sort_values("user_id")
    assert [round(v, 9) for v in online.to_dict()["spend_eur"]] == last["spend_eur"].round(9).tolist()
    assert online.to_dict()["n"] == last["n"].tolist()


def test_running_twice_changes_nothing_and_overlaps_fill_only_gaps(shop: FeatureStore, repo: Path) -> None:
    table = shop.get_feature_view("hourly").table_name
    planned = shop.backfill(T0, T0 + 6 * H, progress=False, dry_run=True).views["hourly"]
    assert (planned.computed, planned.rows, shop.delta.version(table)) == (((T0, T0 + 6 * H),), 0, None)
    assert shop.computed_intervals("hourly") == []  # a dry run records nothing
    first = shop.backfill(T0, T0 + 6 * H, progress=False).views["hourly"]
    assert len(first.table_versions) == 1
    version = shop.delta.version(table)
    again = shop.backfill(T0, T0 + 6 * H, progress=False).views["hourly"]
    assert (again.computed, again.rows, again.table_versions) == ((), 0, ())
    assert shop.delta.version(table) == version  # no new Delta version
    shop.backfill(T0 + 10 * H, T0 + 12 * H, progress=False)
    # Overlapping both computed intervals: only the gap between them is computed.
    middle = shop.backfill(T0 + 4 * H, T0 + 11 * H, progress=False).views["hourly"]
    assert middle.computed == ((T0 + 6 * H, T0 + 10 * H),)
    assert middle.rows == 12
    assert shop.computed_intervals("hourly") == [(T0, T0 + 12 * H)]
    got = computed(shop)
    assert not got.duplicated(["user_id", "event_timestamp"]).any()  # no duplicate offline rows
    assert_matches(got, oracle(shop, repo, T0, T0 + 12 * H))
    assert shop.sql("SELECT count(*) AS c FROM hourly").column("c").to_pylist() == [36]


def test_steps_commit_one_version_per_piece_with_rows(shop: FeatureStore, repo: Path) -> None:
    result = shop.backfill(T0 + 20 * H, T0 + 30 * H, step=2 * H, progress=False).views["hourly"]
    # Payments cover hours 0..23: pieces [20,22) and [22,24) have rows; [24,26)... are empty.
    assert len(result.table_versions) == 2
    assert result.rows == 12
    assert shop.computed_intervals("hourly") == [(T0 + 20 * H, T0 + 30 * H)]
    assert_matches(computed(shop), oracle(shop, repo, T0 + 20 * H, T0 + 30 * H))


def test_materialize_computes_transformed_views_up_to_its_end(shop: FeatureStore, repo: Path) -> None:
    never = shop.materialize_incremental(T0 + 5 * H, views=["hourly"])
    assert never.computed == {}  # never backfilled, no start: left for backfill to begin
    shop.backfill(T0, T0 + 4 * H, progress=False)
    result = shop.materialize_incremental(T0 + 8 * H, views=["hourly"])
    assert result.computed["hourly"].computed == ((T0 + 4 * H, T0 + 8 * H),)
    assert shop.computed_intervals("hourly") == [(T0, T0 + 8 * H)]
    assert_matches(computed(shop), oracle(shop, repo, T0, T0 + 8 * H))
    windowed = shop.materialize(T0 + 8 * H, T0 + 9 * H, views=["hourly"])
    assert windowed.computed["hourly"].rows == 3


def test_a_changed_query_is_a_new_computation(shop: FeatureStore, repo: Path) -> None:
    shop.backfill(T0, T0 + 2 * H, progress=False)
    doubled = HOURLY_SQL.replace("sum(p.amount * fx.rate)", "2 * sum(p.amount * fx.rate)")
    shop.apply([USER, PAYMENTS, hourly(doubled)])
    assert shop.computed_intervals("hourly") == []
    shop.backfill(T0, T0 + 2 * H, progress=False)
    want = oracle(shop, repo, T0, T0 + 2 * H)
    spine = pd.DataFrame({"user_id": [1], "event_timestamp": [T0 + H + timedelta(minutes=1)]})
    got = shop.get_historical_features(spine, ["hourly:spend_eur"]).to_df()
    row = want[(want.user_id == 1) & (want.event_timestamp == T0 + H)]
    assert round(got["spend_eur"][0], 9) == round(2 * row["spend_eur"].iloc[0], 9)  # the later write wins


def _nothing_written(store: FeatureStore, name: str = "hourly") -> None:
    assert store.delta.version(store.get_feature_view(name).table_name) is None
    assert store.computed_intervals(name) == []
    assert store.get_online_features([f"{name}:n"], [{"user_id": 1}]).to_dict()["n"] == [None]


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        (HOURLY_SQL.replace(", count(*) AS n", ""), SchemaError, "gives no column 'n' \\(the view's feature\\)"),
        (HOURLY_SQL.replace("p.user_id,", ""), SchemaError, "gives no column 'user_id' \\(the view's join key\\)"),
        (HOURLY_SQL.replace("count(*) AS n", "'many' AS n"), SchemaError, "gives feature 'n' as string.*int64"),
        (
            HOURLY_SQL.replace("date_trunc('hour', p.event_timestamp)", "'x'"),
            SchemaError,
            "event time column 'event_timestamp' as string; it must be a TIMESTAMP",
        ),
        (HOURLY_SQL.replace("count(*) AS n", "count(*) AS n, 1 AS extra"), SchemaError, "columns \\['extra'\\]"),
        (
            "SELECT p.user_id, date_trunc('hour', p.event_timestamp) AS event_timestamp, p.amount AS spend_eur, "
            "1 AS n FROM payments p JOIN fx USING (currency)",
            SchemaError,
            r"gives \d rows for \(user_id=\d, event_timestamp=.*\); it must give one row per join keys and event time",
        ),
        ("SELECT FROM WHERE", UserError, "feature view 'hourly': its SqlSource query failed: SQL error"),
        ("SELECT * FROM nowhere", UserError, "nowhere"),
        ("SELECT 1; SELECT 2", UserError, "one read-only SELECT; got 2 statements"),
        ("COPY payments TO 'stolen.csv'", UserError, "one read-only SELECT"),
        ("SELECT * FROM read_csv('/etc/passwd')", UserError, "files are out of reach"),
    ],
)
def test_a_bad_query_is_a_clear_error_and_writes_nothing(
    store: FeatureStore, repo: Path, query: str, error: type[Exception], message: str
) -> None:
    pd.DataFrame({"currency": ["USD"], "rate": [0.5]}).to_csv(repo / "fx.csv", index=False)
    store.apply([USER, PAYMENTS, hourly(query)])
    store.write("payments", payment_rows(T0, 2))
    with pytest.raises(error, match=message):
        store.backfill(T0, T0 + 2 * H, progress=False)
    _nothing_written(store)
    assert not (repo / "stolen.csv").exists()


def test_a_missing_input_file_is_named(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, PAYMENTS, hourly()])
    with pytest.raises(UserError, match=r"SqlSource input 'fx' .*fx.csv.*no such file"):
        store.backfill(T0, T0 + H, progress=False)
    _nothing_written(store)


def test_bad_ranges_and_views_are_refused(shop: FeatureStore) -> None:
    with pytest.raises(UserError, match="must be before end"):
        shop.backfill(T0 + H, T0, progress=False)
    with pytest.raises(UserError, match="in the future"):
        shop.backfill(T0, datetime.now(UTC) + timedelta(days=2), progress=False)
    with pytest.raises(UserError, match="'payments' is not computed by a query"):
        shop.backfill(T0, T0 + H, ["payments"], progress=False)
    with pytest.raises(UserError, match="step must be a positive duration"):
        shop.backfill(T0, T0 + H, step=timedelta(0), progress=False)
    with pytest.raises(UserError, match="run `strato backfill"):
        shop.ingest("hourly")


def test_views_are_computed_after_the_views_they_read(shop: FeatureStore, repo: Path) -> None:
    daily = FeatureView(
        "daily",
        entities=[USER],
        schema=[Field("spend_eur", Float64)],
        source=SqlSource(
            "SELECT user_id, date_trunc('day', event_timestamp) AS event_timestamp, sum(spend_eur) AS spend_eur "
            "FROM hourly GROUP BY ALL",
            inputs=["hourly"],
        ),
    )
    day = T0.replace(hour=0) + timedelta(days=1)
    shop.apply([USER, PAYMENTS, hourly(), daily])
    result = shop.backfill(day, day + timedelta(days=1), ["daily", "hourly"], progress=False)
    assert list(result.views) == ["hourly", "daily"]
    want = oracle(shop, repo, day, day + timedelta(days=1)).groupby("user_id")["spend_eur"].sum()
    got = shop.sql("SELECT user_id, spend_eur FROM daily ORDER BY user_id").to_pandas()
    assert got["spend_eur"].round(9).tolist() == want.round(9).tolist()


def test_backfill_needs_write_on_the_view_and_read_on_its_inputs(shop: FeatureStore, repo: Path) -> None:
    first = admin.enable(shop.access, created_by="test")
    with FeatureStore(repo, token=first.text) as owner:
        tokens = {
            role: admin.create_token(owner.access, role, name=f"t-{role}", created_by="test").text
            for role in ("reader", "writer")
        }
        scoped = admin.create_token(owner.access, "writer", name="scoped", created_by="test", view="hourly").text
    with FeatureStore(repo, token=tokens["reader"]) as reader, pytest.raises(AccessDeniedError):
        reader.backfill(T0, T0 + H, progress=False)
    with FeatureStore(repo, token=scoped) as writer_of_hourly, pytest.raises(AccessDeniedError, match="payments"):
        writer_of_hourly.backfill(T0, T0 + H, progress=False)  # may write hourly, may not read payments
    with FeatureStore(repo, token=tokens["writer"]) as writer:
        assert writer.backfill(T0, T0 + H, progress=False).views["hourly"].rows == 3


def test_a_run_that_dies_after_its_commit_appends_nothing_the_second_time(
    shop: FeatureStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = shop.get_feature_view("hourly").table_name
    record = shop.registry.add_computed_interval

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(shop.registry, "add_computed_interval", dies)
    with pytest.raises(RuntimeError, match="power cut"):
        shop.backfill(T0, T0 + 3 * H, progress=False)
    assert shop.delta.version(table) == 0  # the rows are durable, the interval is not recorded
    assert shop.computed_intervals("hourly") == []
    monkeypatch.setattr(shop.registry, "add_computed_interval", record)
    again = shop.backfill(T0, T0 + 3 * H, progress=False).views["hourly"]
    assert again.computed == ((T0, T0 + 3 * H),)
    assert again.table_versions == ()  # the piece's idempotency key was found: nothing appended
    assert shop.delta.version(table) == 0
    assert shop.computed_intervals("hourly") == [(T0, T0 + 3 * H)]
    assert_matches(computed(shop), oracle(shop, repo, T0, T0 + 3 * H))


ranges = st.lists(
    st.tuples(st.integers(0, 29), st.integers(1, 8)).map(lambda p: (p[0], min(p[0] + p[1], 30))),
    min_size=1,
    max_size=4,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=ranges, step=st.sampled_from([None, 1, 3]))
def test_any_sequence_of_backfills_equals_one_over_their_union(
    tmp_path_factory: pytest.TempPathFactory, requests: list[tuple[int, int]], step: int | None
) -> None:
    """Whatever ranges are asked, in whatever order: the computed record is their union, the
    rows are the oracle's over it (no duplicates), and one Delta version was made per piece
    with rows (payments cover hours 0-23)."""
    repo = tmp_path_factory.mktemp("prop")
    write_default_config(repo, "proj")
    pd.DataFrame({"currency": ["USD", "GBP", "EUR"], "rate": [0.5, 1.25, 1.0]}).to_csv(repo / "fx.csv", index=False)
    with FeatureStore(repo) as store:
        store.apply([USER, PAYMENTS, hourly()])
        store.write("payments", payment_rows(T0, 24))
        done: list[tuple[datetime, datetime]] = []
        pieces_with_rows = 0
        for a, b in requests:
            wanted = [(T0 + a * H, T0 + b * H)]
            gaps = intervals.subtract(wanted, done)
            pieces = [p for g in gaps for p in intervals.split(g, None if step is None else step * H)]
            pieces_with_rows += sum(1 for low, _ in pieces if low < T0 + 24 * H)
            result = store.backfill(T0 + a * H, T0 + b * H, step=None if step is None else step * H, progress=False)
            assert result.views["hourly"].computed == tuple(gaps)
            done = intervals.union(done, wanted)
        assert store.computed_intervals("hourly") == done
        got = computed(store)
        assert not got.duplicated(["user_id", "event_timestamp"]).any()
        want = pd.concat([oracle(store, repo, low, high) for low, high in done]) if done else got.iloc[:0]
        assert_matches(got, want.sort_values(["event_timestamp", "user_id"]).reset_index(drop=True))
        versions = store.delta.version(store.get_feature_view("hourly").table_name)
        assert (0 if versions is None else versions + 1) == pieces_with_rows


def test_lineage_shows_what_a_transformation_reads_and_who_reads_a_view(shop: FeatureStore) -> None:
    def labels(node: Any) -> list[str]:
        return [node.label, *(label for child in node.children for label in labels(child))]

    hourly_tree = labels(shop.lineage("view:hourly"))
    fingerprint = shop.get_feature_view("hourly").source.fingerprint  # type: ignore[union-attr]
    assert f"source sql transformation {fingerprint}" in hourly_tree
    assert "feature view payments" in hourly_tree
    assert "file fx = fx.csv (csv)" in hourly_tree
    payments_tree = labels(shop.lineage("view:payments"))
    assert "read by batch transformations" in payments_tree
    assert "feature view hourly v1" in payments_tree


ROLLING_SQL = """
    SELECT h.user_id, h.event_timestamp, sum(p.amount) AS spend_eur, count(*) AS n
    FROM (
        SELECT DISTINCT user_id, date_trunc('hour', event_timestamp) + INTERVAL 1 HOUR AS event_timestamp
        FROM payments WHERE event_timestamp >= $start - INTERVAL 1 HOUR AND event_timestamp < $end
    ) h
    JOIN payments p ON p.user_id = h.user_id
        AND p.event_timestamp >= h.event_timestamp - INTERVAL 3 HOUR AND p.event_timestamp < h.event_timestamp
    WHERE p.event_timestamp >= $start - INTERVAL 3 HOUR
    GROUP BY ALL
"""


def test_a_look_back_window_in_pieces_equals_the_oracle(shop: FeatureStore) -> None:
    """$start/$end narrow the inputs of each piece; the 3-hour look-back still sees rows
    before the piece, so pieces of 2 hours give what one piece would."""
    rolling = FeatureView(
        "rolling",
        entities=[USER],
        schema=[Field("spend_eur", Float64), Field("n", Int64)],
        source=SqlSource(ROLLING_SQL, inputs=["payments"]),
    )
    shop.apply([USER, PAYMENTS, hourly(), rolling])
    start, end = T0 + 4 * H, T0 + 14 * H
    assert len(shop.backfill(start, end, ["rolling"], step=2 * H, progress=False).views["rolling"].table_versions) == 5
    payments = pd.DataFrame(payment_rows(T0, 24))
    want = []
    for user in (1, 2, 3):
        mine = payments[payments.user_id == user]
        for hour in range(4, 14):
            t = T0 + hour * H
            if not ((mine.event_timestamp >= t - H) & (mine.event_timestamp < t)).any():
                continue
            window = mine[(mine.event_timestamp >= t - 3 * H) & (mine.event_timestamp < t)]
            want.append((user, t, round(window.amount.sum(), 9), len(window)))
    got = shop.sql("SELECT user_id, event_timestamp, spend_eur, n FROM rolling").to_pylist()
    assert sorted((r["user_id"], r["event_timestamp"], round(r["spend_eur"], 9), r["n"]) for r in got) == sorted(want)
    assert len(want) == 30


def test_a_new_version_filled_from_the_old_keeps_what_its_query_computed(shop: FeatureStore, repo: Path) -> None:
    shop.backfill(T0, T0 + 4 * H, progress=False)
    shop.apply([USER, PAYMENTS, hourly(description="fresh storage, same query")], new_version=["hourly"])
    fv = shop.get_feature_view("hourly")
    assert fv.table_name == "hourly__v2"
    assert shop.computed_intervals("hourly") == [(T0, T0 + 4 * H)]
    again = shop.backfill(T0, T0 + 6 * H, progress=False).views["hourly"]
    assert again.computed == ((T0 + 4 * H, T0 + 6 * H),)
    got = computed(shop)
    assert not got.duplicated(["user_id", "event_timestamp"]).any()
    assert_matches(got, oracle(shop, repo, T0, T0 + 6 * H))


def _backfill_in_a_process(repo: str, start: datetime, end: datetime, go: Any) -> None:
    go.wait(timeout=60)
    with FeatureStore(repo) as store:
        store.backfill(start, end, progress=False)


def test_two_processes_backfilling_at_once_compute_each_gap_once(shop: FeatureStore, repo: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    ranges = [(T0, T0 + 8 * H), (T0 + 4 * H, T0 + 12 * H)]
    procs = [spawn.Process(target=_backfill_in_a_process, args=(str(repo), a, b, go)) for a, b in ranges]
    for proc in procs:
        proc.start()
    go.set()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert shop.computed_intervals("hourly") == [(T0, T0 + 12 * H)]
    got = computed(shop)
    assert not got.duplicated(["user_id", "event_timestamp"]).any()  # the lock kept the gaps apart
    assert_matches(got, oracle(shop, repo, T0, T0 + 12 * H))
    assert shop.delta.version(shop.get_feature_view("hourly").table_name) == 1  # one commit per run
