"""Ties between writers (design rule 10): threads and processes writing the same (key, event
time) at once get distinct created stamps, and online keeps the row history calls the winner.

Each writer has its own `FeatureStore`. The wall clock is frozen in every writer — all writes
then land "in the same microsecond", the case the old per-store counter got wrong: every
store counted now, now+1, … on its own, so stamps collided, history kept an arbitrary row of
a tie and online whichever upsert came last. The repo's shared write clock makes one order.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from strato import FeatureStore

from .helpers import USER, stats_view

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FROZEN_NS = 1_790_000_000_000_000_000
KEYS = 6
WRITES = 6
THREADS = 3
PROCESSES = 3


def _write_ties(repo: str, writer: int) -> None:
    """`WRITES` batches, each every key at event time T0, `x` naming the writer and batch."""
    with FeatureStore(repo) as store:
        for i in range(WRITES):
            rows = [
                {"user_id": k, "event_timestamp": T0, "x": writer * 100 + i, "tag": f"w{writer}", "score": 0.0}
                for k in range(KEYS)
            ]
            store.write("stats", rows)


def _frozen_writer(repo: str, writer: int) -> None:
    time.time_ns = lambda: FROZEN_NS  # this child's wall clock stands still
    _write_ties(repo, writer)


def test_threads_and_processes_agree_on_one_write_order(
    store: FeatureStore, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply([USER, stats_view()])
    # Create the Delta table before the race: concurrent *first* commits to a new table can
    # fail with "protocol changed" (a separate issue). An older event never wins a tie at T0.
    old = T0 - timedelta(days=1)
    store.write(
        "stats", [{"user_id": k, "event_timestamp": old, "x": -1, "tag": "", "score": 0.0} for k in range(KEYS)]
    )
    store.close()
    monkeypatch.setattr(time, "time_ns", lambda: FROZEN_NS)
    processes = [mp.get_context("spawn").Process(target=_frozen_writer, args=(str(repo), w)) for w in range(PROCESSES)]
    errors: list[BaseException] = []

    def thread_writer(writer: int) -> None:
        try:
            _write_ties(str(repo), writer)
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(PROCESSES + w,)) for w in range(THREADS)]
    for worker in [*processes, *threads]:
        worker.start()
    for t in threads:
        t.join(timeout=300)
    for p in processes:
        p.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    monkeypatch.undo()

    with FeatureStore(repo) as fresh:
        history = fresh.sql("select user_id, x, created_timestamp from stats where x >= 0").to_pylist()
        assert len(history) == (PROCESSES + THREADS) * WRITES * KEYS  # nothing lost
        # One stamp per write, none shared by two writes: a total order.
        stamp_of_write = {(row["x"], row["created_timestamp"]) for row in history}
        assert len({x for x, _ in stamp_of_write}) == len(stamp_of_write) == (PROCESSES + THREADS) * WRITES
        assert len({stamp for _, stamp in stamp_of_write}) == len(stamp_of_write)

        winner = {}
        for k in range(KEYS):
            rows = [row for row in history if row["user_id"] == k]
            winner[k] = max(rows, key=lambda row: row["created_timestamp"])["x"]  # all at event time T0
        online = fresh.get_online_features(["stats:x"], [{"user_id": k} for k in range(KEYS)]).to_dict()
        assert online["x"] == [winner[k] for k in range(KEYS)]
        spine = pd.DataFrame({"user_id": list(range(KEYS)), "event_timestamp": [T0] * KEYS})
        training = fresh.get_historical_features(spine, ["stats:x"]).to_df()
        assert training["x"].tolist() == [winner[k] for k in range(KEYS)]


def test_stamps_stay_unique_and_increasing_across_threads(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock itself, without storage: many threads, a frozen wall clock, every stamp distinct."""
    from strato.store.write_clock import CLOCK_FILE, WriteClock

    monkeypatch.setattr(time, "time_ns", lambda: FROZEN_NS)
    clocks = [WriteClock(repo / ".strato" / CLOCK_FILE) for _ in range(4)]
    stamps: list[list[int]] = [[] for _ in range(8)]

    def draw(i: int) -> None:
        for _ in range(2000):
            stamps[i].append(clocks[i % 4].next_us())

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [s for per_thread in stamps for s in per_thread]
    assert len(set(every)) == len(every) == 8 * 2000
    assert all(a < b for per_thread in stamps for a, b in itertools.pairwise(per_thread))
    # The clock stands still, so the stamps are now, now+1, …: none skipped, none repeated.
    assert (min(every), max(every)) == (FROZEN_NS // 1000, FROZEN_NS // 1000 + len(every) - 1)
