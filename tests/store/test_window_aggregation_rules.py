"""Windowed aggregations through `FeatureStore`, case by case: lateness, concurrent writers,
redone writes, request shapes, services, compatible changes and pruning (LMDB, the default)."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from strato import (
    Aggregation,
    Entity,
    Expect,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    Float64,
    Int64,
    String,
    clock,
)
from strato.errors import UserError
from strato.streaming.tiles import StreamPositions

USER = Entity("user", join_keys={"user_id": Int64})
US = 1_000_000
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def txns(*extra: Aggregation, lateness: timedelta | None = timedelta(minutes=5)) -> FeatureView:
    return FeatureView(
        "txns",
        entities=[USER],
        schema=[Field("amount", Float64), Field("shop", String)],
        aggregations=[
            Aggregation("amount", "sum", timedelta(minutes=10)),
            Aggregation("amount", "count", timedelta(hours=1)),
            Aggregation("shop", "last", timedelta(hours=1)),
            *extra,
        ],
        allowed_lateness=lateness,
    )


class FakeClock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime):
        self.now = _us(start)
        monkeypatch.setattr(clock, "now_us", lambda: self.now)

    def at(self, moment: datetime) -> None:
        self.now = _us(moment)


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * US + moment.microsecond


def _row(user: int, at: datetime, amount: float | None, shop: str | None = "s") -> dict[str, Any]:
    return {"user_id": user, "event_timestamp": at, "amount": amount, "shop": shop}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return FakeClock(monkeypatch, T0)


@pytest.fixture
def agg(store: FeatureStore) -> FeatureStore:
    store.apply([USER, txns()])
    return store


def _online(store: FeatureStore, refs: list[str], users: list[int]) -> dict[str, list[Any]]:
    return store.get_online_features(refs, {"user_id": users}).to_dict()


def _offline(store: FeatureStore, refs: list[str], users: list[int], at: datetime) -> dict[str, list[Any]]:
    spine = pd.DataFrame({"user_id": users, "event_timestamp": [at] * len(users)})
    table = store.get_historical_features(spine, refs).table
    return {c: table.column(c).to_pylist() for c in table.column_names}


def test_events_later_than_the_lateness_are_dropped_online_and_offline(agg: FeatureStore, fake: FakeClock) -> None:
    fake.at(T0)
    agg.write("txns", [_row(1, T0 - timedelta(minutes=1), 1.0)])
    # Written at T0 + 6 min: 2 min late (kept) and 6 min late (dropped: beyond the 5-minute lateness).
    fake.at(T0 + timedelta(minutes=6))
    agg.write("txns", [_row(1, T0 + timedelta(minutes=4), 10.0), _row(1, T0, 100.0)])
    refs = ["txns:amount_sum_10m", "txns:amount_count_1h"]
    assert _online(agg, refs, [1]) == {"user_id": [1], "amount_sum_10m": [11.0], "amount_count_1h": [2]}
    offline = _offline(agg, refs, [1], T0 + timedelta(minutes=6))
    assert offline["amount_sum_10m"] == [11.0]
    assert offline["amount_count_1h"] == [2]
    # The dropped event is still history: a raw feature sees it (as of T0 it is the latest row).
    assert _offline(agg, ["txns:amount"], [1], T0)["amount"] == [100.0]


def test_without_a_lateness_a_backfill_counts_in_full(store: FeatureStore, fake: FakeClock) -> None:
    store.apply([USER, txns(lateness=None)])
    fake.at(T0 + timedelta(days=30))
    store.write("txns", [_row(1, T0 + timedelta(minutes=m), 1.0) for m in range(60)])
    # Old events: online (read 30 days later) the windows are empty, offline at T0 + 1h they count.
    assert _online(store, ["txns:amount_count_1h"], [1])["amount_count_1h"] == [0]
    offline = _offline(store, ["txns:amount_count_1h", "txns:amount_sum_10m"], [1], T0 + timedelta(minutes=59))
    assert offline["amount_count_1h"] == [60]
    assert offline["amount_sum_10m"] == [10.0]


def test_threads_writing_one_entity_lose_nothing(agg: FeatureStore, fake: FakeClock) -> None:
    fake.at(T0)
    agg.write("txns", [_row(7, T0 - timedelta(seconds=90), 1.0)])  # the first commit creates the Delta table
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(20):
                agg.write("txns", [_row(7, T0 - timedelta(seconds=k * 20 + i + 1), 1.0)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _online(agg, ["txns:amount_count_1h"], [7])["amount_count_1h"] == [81]


def _process_writer(repo: str, k: int, now_us: int) -> None:
    clock.now_us = lambda: now_us  # type: ignore[assignment]  # this child's clock
    with FeatureStore(repo) as store:
        for i in range(15):
            at = T0 - timedelta(seconds=k * 15 + i + 1)
            store.write("txns", [_row(8, at, 2.0)])


def test_processes_writing_one_entity_lose_nothing(agg: FeatureStore, fake: FakeClock, repo: Path) -> None:
    """The tile merge is serialized across processes too (the repo's aggregates lock)."""
    fake.at(T0)
    agg.write("txns", [_row(8, T0 - timedelta(seconds=90), 2.0)])  # the first commit creates the Delta table
    agg.online_store.close()  # LMDB: open the environment only after forking
    agg._online = None
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_process_writer, args=(str(repo), k, fake.now)) for k in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    online = _online(agg, ["txns:amount_count_1h", "txns:amount_sum_10m"], [8])
    assert online["amount_count_1h"] == [46]
    assert online["amount_sum_10m"] == [92.0]


def test_a_write_redone_with_its_idempotency_key_is_not_counted_twice(agg: FeatureStore, fake: FakeClock) -> None:
    fake.at(T0)
    rows = [_row(3, T0 - timedelta(minutes=1), 5.0)]
    agg.write("txns", rows, idempotency_key="batch-1")
    again = agg.write("txns", rows, idempotency_key="batch-1")
    assert again.already_written
    assert _online(agg, ["txns:amount_sum_10m"], [3])["amount_sum_10m"] == [5.0]


def _streamed(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array([r["user_id"] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r["event_timestamp"] for r in rows], pa.timestamp("us", tz="UTC")),
            "amount": pa.array([r["amount"] for r in rows], pa.float64()),
            "shop": pa.array([r["shop"] for r in rows], pa.string()),
        }
    )


def test_streamed_events_replayed_online_are_not_counted_twice(agg: FeatureStore, fake: FakeClock) -> None:
    """`strato ingest` replays online what a crash may have left half done: the tiles skip the
    events each source already merged, by their offsets, and count the new ones."""
    fake.at(T0)
    first = [_row(1, T0 - timedelta(minutes=m), 1.0) for m in (3, 2, 1)] + [_row(2, T0 - timedelta(minutes=2), 10.0)]
    agg.write(
        "txns", _streamed(first), to="online", stream_positions=StreamPositions(["t:0"] * 3 + ["t:1"], [5, 6, 7, 0])
    )
    # The replay starts from older offsets, overlaps what was merged, and brings two new events.
    replay = [*first[1:], _row(1, T0 - timedelta(seconds=30), 100.0), _row(2, T0 - timedelta(seconds=10), 1000.0)]
    positions = StreamPositions(["t:0", "t:0", "t:1", "t:0", "t:1"], [6, 7, 0, 8, 1])
    agg.write("txns", _streamed(replay), to="online", stream_positions=positions)
    got = _online(agg, ["txns:amount_sum_10m", "txns:amount_count_1h"], [1, 2])
    assert got == {"user_id": [1, 2], "amount_sum_10m": [103.0, 1010.0], "amount_count_1h": [4, 2]}
    # Another source (partition) has marks of its own: offset 0 of "t:2" is new.
    agg.write("txns", _streamed([_row(1, T0, 0.5)]), to="online", stream_positions=StreamPositions(["t:2"], [0]))
    assert _online(agg, ["txns:amount_sum_10m"], [1])["amount_sum_10m"] == [103.5]


def test_stream_positions_follow_rows_a_write_drops(store: FeatureStore, fake: FakeClock) -> None:
    """Quarantined rows and rows superseded in the batch leave with their positions: the marks
    are those of the events merged, so a later event of the same source still counts."""
    store.apply([USER, txns(), _checked()])
    fake.at(T0)
    rows = [
        _row(1, T0 - timedelta(minutes=3), 1.0),
        _row(1, T0 - timedelta(minutes=2), -5.0),  # quarantined: amount must be >= 0
        _row(1, T0 - timedelta(minutes=1), 2.0),
        _row(1, T0 - timedelta(minutes=1), 3.0),  # same identity as the row before: supersedes it
    ]
    result = store.write("checked", _streamed(rows), stream_positions=StreamPositions(["t:0"] * 4, [0, 1, 2, 3]))
    assert result.quarantined == 1
    assert _online(store, ["checked:amount_sum_10m"], [1])["amount_sum_10m"] == [4.0]
    quarantine = store.quarantined("checked").to_pylist()
    assert [r["amount"] for r in quarantine] == [-5.0]
    assert not any(c.startswith("__strato") for c in quarantine[0])
    store.write("checked", _streamed([_row(1, T0, 10.0)]), stream_positions=StreamPositions(["t:0"], [4]))
    assert _online(store, ["checked:amount_sum_10m"], [1])["amount_sum_10m"] == [14.0]


def test_stream_positions_must_match_the_rows(agg: FeatureStore) -> None:
    with pytest.raises(UserError, match="2 stream positions for 1 rows"):
        agg.write("txns", _streamed([_row(1, T0, 1.0)]), stream_positions=StreamPositions(["t:0"] * 2, [0, 1]))


def _checked() -> FeatureView:
    return FeatureView(
        "checked",
        entities=[USER],
        schema=[Field("amount", Float64, expect=Expect(ge=0)), Field("shop", String)],
        aggregations=[Aggregation("amount", "sum", timedelta(minutes=10))],
        on_invalid="quarantine",
    )


def test_requests_mix_features_and_aggregations_in_order(agg: FeatureStore, fake: FakeClock) -> None:
    fake.at(T0)
    agg.write("txns", [_row(1, T0 - timedelta(minutes=m), float(m), f"s{m}") for m in (1, 2, 3)])
    refs = ["txns:amount", "txns:amount_sum_10m", "txns:shop", "txns:amount_count_1h", "txns:shop_last_1h"]
    response = agg.get_online_features(refs, [{"user_id": 1}, {"user_id": 2}], full_feature_names=True)
    assert response.to_dict() == {
        "user_id": [1, 2],
        "txns__amount": [1.0, None],
        "txns__amount_sum_10m": [6.0, 0.0],
        "txns__shop": ["s1", None],
        "txns__amount_count_1h": [3, 0],
        "txns__shop_last_1h": ["s1", None],
    }
    table = response.to_arrow()
    assert table.schema.field("txns__amount_count_1h").type == pa.int64()
    assert table.schema.field("txns__shop_last_1h").type == pa.string()
    numeric = agg.get_online_features(["txns:amount_sum_10m", "txns:amount_count_1h"], [{"user_id": 1}])
    assert numeric.to_numpy().tolist() == [[6.0, 3.0]]
    assert numeric.to_df().to_dict("list") == {"user_id": [1], "amount_sum_10m": [6.0], "amount_count_1h": [3]}
    # Offline, in request order too, with a custom time column.
    spine = pd.DataFrame({"user_id": [1, 2], "at": [T0, T0]})
    training = agg.get_historical_features(spine, refs, timestamp_field="at", full_feature_names=True)
    assert training.table.column_names == ["user_id", "at", *(r.replace(":", "__") for r in refs)]
    assert training.table.to_pylist()[0]["txns__amount_sum_10m"] == 6.0


def test_services_serve_aggregations(agg: FeatureStore, fake: FakeClock) -> None:
    fake.at(T0)
    service = FeatureService("scoring", [agg.get_feature_view("txns")[["amount_sum_10m", "amount"]]])
    agg.apply([USER, txns(), service])
    agg.write("txns", [_row(1, T0 - timedelta(seconds=5), 4.0)])
    assert agg.get_online_features(service, [{"user_id": 1}]).to_dict() == {
        "user_id": [1],
        "amount_sum_10m": [4.0],
        "amount": [4.0],
    }
    spine = pd.DataFrame({"user_id": [1], "event_timestamp": [T0]})
    assert agg.get_historical_features(spine, service).table.column("amount_sum_10m").to_pylist() == [4.0]


def test_an_aggregation_added_later_fills_from_the_next_writes(agg: FeatureStore, fake: FakeClock) -> None:
    fake.at(T0)
    agg.write("txns", [_row(1, T0 - timedelta(minutes=2), 1.0)])
    plan = agg.apply([USER, txns(Aggregation("amount", "max", timedelta(minutes=10)))])
    assert [c.action.value for c in plan.changes if c.name == "txns"] == ["update"]
    assert agg.get_feature_view("txns").table_name == "txns__v1"  # same storage
    fake.at(T0 + timedelta(seconds=1))
    agg.write("txns", [_row(1, T0 - timedelta(minutes=1), 0.5)])
    online = _online(agg, ["txns:amount_sum_10m", "txns:amount_max_10m"], [1])
    assert online["amount_sum_10m"] == [1.5]  # kept tiles carry on
    assert online["amount_max_10m"] == [0.5]  # its slot starts with the write after the change
    # Offline computes it from the whole history at once.
    assert _offline(agg, ["txns:amount_max_10m"], [1], T0 + timedelta(seconds=1))["amount_max_10m"] == [1.0]


def test_views_without_history_yet_read_empty_windows_offline(agg: FeatureStore) -> None:
    offline = _offline(agg, ["txns:amount_sum_10m", "txns:amount_count_1h", "txns:shop_last_1h"], [1], T0)
    assert offline == {
        "user_id": [1],
        "event_timestamp": [T0],
        "amount_sum_10m": [0.0],
        "amount_count_1h": [0],
        "shop_last_1h": [None],
    }


def test_prune_drops_idle_tile_rows(store: FeatureStore) -> None:
    """Real clock here: pruning compares with this machine's time."""
    store.apply([USER, txns(lateness=None)])
    now = datetime.now(UTC)
    store.write("txns", [_row(1, now - timedelta(seconds=1), 1.0), _row(2, now - timedelta(days=2), 1.0)])
    table = "txns__v1__tiles"
    keys = [(1).to_bytes(8, "big", signed=True), (2).to_bytes(8, "big", signed=True)]
    assert all(v is not None for v in store.online_store.read(table, keys))
    store.prune_expired()
    fresh, idle = store.online_store.read(table, keys)
    assert fresh is not None  # its newest event is within the longest window
    assert idle is None  # newest event 2 days old: beyond the 1-hour window, nothing readable
    assert _online(store, ["txns:amount_count_1h"], [1, 2])["amount_count_1h"] == [1, 0]
