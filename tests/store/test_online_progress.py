"""Issue 7, items 1, 2 and 8: incremental materialization follows what was committed.

Progress is kept per storage as Delta table versions, so late rows, offline-only writes and
writes whose online step failed are all loaded by the next incremental run, whatever their
event times; an explicit window never claims rows it did not load; a new view version starts
with its own progress; and a materialization cannot end in the future.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato import BackendFailure, FeatureStore, FeatureView, Field, Int64, OnlineBehindError, UserError
from strato.config import write_default_config
from strato.registry.base import OnlineProgress
from strato.store.feature_store import OVERLAP_MIN_ROWS

from .helpers import USER, online, stats_view

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)


def day(n: float) -> datetime:
    return BASE + timedelta(days=n)


def row(user: int, when: float, x: int) -> dict[str, Any]:
    return {"user_id": user, "event_timestamp": day(when), "x": x, "tag": None, "score": None}


@pytest.fixture
def stats(store: FeatureStore) -> FeatureStore:
    store.apply([USER, stats_view()])
    return store


def test_a_late_offline_row_is_loaded_by_the_next_incremental_run(stats: FeatureStore) -> None:
    stats.write("stats", [row(1, 10, 10)], to="offline")
    assert stats.materialize_incremental(day(10.5), progress=False).rows == {"stats": 1}
    # Event day 3, committed after the last run ended at day 10.5: the report's `{'s': 0}`.
    stats.write("stats", [row(2, 3, 3)], to="offline")
    assert stats.materialize_incremental(day(11), progress=False).rows == {"stats": 1}
    assert online(stats, ["stats:x"], [1, 2])["x"] == [10, 3]


def _fail_online_writes(store: FeatureStore, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """The online engine fails (or the user presses Ctrl-C) once history has committed."""

    def failing(*args: object, **kwargs: object) -> int:
        raise error

    monkeypatch.setattr(store.online_store, "write", failing)


@pytest.mark.parametrize("rows", [2, OVERLAP_MIN_ROWS + 1])
def test_a_write_whose_online_step_failed_says_so_and_is_finished_by_incremental(
    repo: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    with FeatureStore(repo) as first:
        first.apply([USER, stats_view()])
        first.write("stats", [row(1, 1, 1)])
        _fail_online_writes(first, monkeypatch, BackendFailure("disk on fire"))
        with pytest.raises(OnlineBehindError) as failure:
            first.write("stats", [row(u, 2, 2 + u) for u in range(1, rows + 1)])
    message = str(failure.value)
    assert "committed as table version 1" in message
    assert "online not updated" in message
    assert "strato materialize --incremental --view stats" in message
    assert "disk on fire" in message
    with FeatureStore(repo) as second:
        assert second.online_status("stats") == (OnlineProgress(0), 1)  # the store knows it is behind
        assert online(second, ["stats:x"], [1, 2])["x"] == [1, None]
        assert second.materialize_incremental(datetime.now(UTC), progress=False).rows == {"stats": rows}
        assert online(second, ["stats:x"], [1, rows])["x"] == [3, 2 + rows]
        progress, latest = second.online_status("stats")
        assert progress is not None
        assert (progress.version, latest) == (1, 1)


def test_an_interrupt_after_the_history_commit_keeps_its_meaning_and_tells_the_truth(
    stats: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_online_writes(stats, monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt) as interrupt:
        stats.write("stats", [row(1, 1, 1)])
    assert interrupt.value.__notes__ == [
        "history of 'stats' committed as table version 0; online not updated; "
        "run `strato materialize --incremental --view stats` to finish"
    ]


def test_writes_to_both_stores_keep_progress_current(stats: FeatureStore) -> None:
    for n in range(3):
        stats.write("stats", [row(n, n, n)])
    assert stats.online_status("stats") == (OnlineProgress(2), 2)
    assert stats.materialize_incremental(datetime.now(UTC), progress=False).rows == {"stats": 0}


def test_an_explicit_window_does_not_advance_progress_past_rows_it_skipped(stats: FeatureStore) -> None:
    stats.write("stats", [row(1, 1, 1), row(2, 5, 5)], to="offline")
    # Only days [4, 6): user 1's row (day 1) is not loaded and must not be claimed.
    assert stats.materialize(day(4), day(6), progress=False).rows == {"stats": 1}
    assert stats.online_status("stats") == (None, 0)
    assert stats.materialize_incremental(day(7), progress=False).rows == {"stats": 2}
    assert online(stats, ["stats:x"], [1, 2])["x"] == [1, 5]


def test_a_window_from_the_beginning_of_history_counts_as_progress(stats: FeatureStore) -> None:
    stats.write("stats", [row(1, 1, 1), row(1, 30, 99)], to="offline")
    assert stats.materialize(None, day(10), progress=False).rows == {"stats": 1}
    assert stats.online_status("stats") == (OnlineProgress(0, day(10)), 0)
    assert stats.materialize_incremental(day(40), progress=False).rows == {"stats": 1}
    assert online(stats, ["stats:x"], [1])["x"] == [99]


def test_progress_is_per_storage_so_a_new_version_is_loaded(repo: Path) -> None:
    """Item 2: one store loads v1 (its cached definition) while another writes v2."""
    with FeatureStore(repo) as a, FeatureStore(repo) as b:
        a.apply([USER, stats_view()])
        a.write("stats", [row(1, 1, 1)], to="offline")
        b.refresh()
        v2 = stats_view(extra=[Field("y", Int64)])
        b.apply([USER, v2], new_version=["stats"])
        b.write("stats", [{**row(2, 2, 2), "y": 7}], to="offline")
        a.materialize_incremental(day(3), progress=False)  # may still load v1: its cache is fresh
        a.refresh()
        a.materialize_incremental(day(3), progress=False)
        assert online(a, ["stats:x", "stats:y"], [2])["y"] == [7]
        current = a.get_feature_view("stats").table_name
        assert a.registry.online_progress(current) is not None


@pytest.mark.parametrize("call", ["window", "incremental"])
def test_a_materialization_cannot_end_in_the_future(stats: FeatureStore, call: str) -> None:
    future = datetime(2099, 1, 1, tzinfo=UTC)
    run = (
        (lambda: stats.materialize(None, future, progress=False))
        if call == "window"
        else (lambda: stats.materialize_incremental(future, progress=False))
    )
    with pytest.raises(UserError, match="in the future"):
        run()
    assert stats.online_status("stats") == (None, None)
    stats.materialize_incremental(datetime.now(UTC) + timedelta(minutes=1), progress=False)  # skew is fine


# ------------------------------------------------------------------ property: vs brute force

KEYS = st.integers(0, 5)
WHEN = st.integers(0, 40)  # days after BASE: late and on-time rows alike
BATCH = st.lists(st.tuples(KEYS, WHEN), min_size=1, max_size=6, unique=True)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write_both"), BATCH),
        st.tuples(st.just("write_offline"), BATCH),
        st.tuples(st.just("incremental"), WHEN),
        st.tuples(st.just("window"), st.tuples(WHEN, st.integers(1, 15))),
        st.tuples(st.just("window_from_start"), WHEN),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_online_matches_brute_force_after_any_interleaving(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:  # type: ignore[type-arg]
    repo = tmp_path_factory.mktemp("repo")
    write_default_config(repo, "prop")
    view = FeatureView("p", entities=[USER], schema=[Field("x", Int64)])
    committed: list[tuple[int, int, int, int]] = []  # (key, day, write seq, value): every history row
    oracle: dict[int, tuple[int, int, int]] = {}  # key -> (day, seq, value), newest per rule 4

    def load(rows: list[tuple[int, int, int, int]]) -> None:
        for key, when, seq, value in rows:
            if key not in oracle or (when, seq) > oracle[key][:2]:
                oracle[key] = (when, seq, value)

    def latest_in(start: int | None, end: int) -> list[tuple[int, int, int, int]]:
        best: dict[int, tuple[int, int, int, int]] = {}
        for r in committed:
            if (start is None or r[1] >= start) and r[1] < end and (r[0] not in best or r[1:3] > best[r[0]][1:3]):
                best[r[0]] = r
        return list(best.values())

    with FeatureStore(repo) as store:
        store.apply([USER, view])
        for seq, (op, arg) in enumerate(ops):
            if op in ("write_both", "write_offline"):
                rows = [(key, when, seq, seq * 100 + key) for key, when in arg]
                data = [{"user_id": k, "event_timestamp": day(w), "x": v} for k, w, _, v in rows]
                store.write("p", data, to="online_and_offline" if op == "write_both" else "offline")
                committed.extend(rows)
                if op == "write_both":
                    load(rows)
            elif op == "incremental":
                store.materialize_incremental(day(arg), progress=False)
                load([r for r in committed if r[1] < arg])
            elif op == "window":
                start, length = arg
                store.materialize(day(start), day(start + length), progress=False)
                load(latest_in(start, start + length))
            else:
                store.materialize(None, day(arg), progress=False)
                load(latest_in(None, arg))
            got = online(store, ["p:x"], list(range(6)))["x"]
            assert got == [oracle[k][2] if k in oracle else None for k in range(6)], (op, arg)
        # A final run up to now loads everything committed.
        store.materialize_incremental(datetime.now(UTC), progress=False)
        load(committed)
        assert online(store, ["p:x"], list(range(6)))["x"] == [oracle[k][2] if k in oracle else None for k in range(6)]
