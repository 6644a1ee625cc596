"""Two processes writing one view at once (a pipeline and a backfill, say): every write lands
as its own Delta version, no row is lost, and online holds the newest event per key (rules 1, 4)."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

from strato import FeatureStore

from .helpers import USER, stats_view

T0 = datetime(2026, 2, 1, tzinfo=UTC)
WRITES = 8
KEYS = 20


def _writer(repo: str, worker: int) -> None:
    with FeatureStore(repo) as store:
        for i in range(WRITES):
            store.write(
                "stats",
                [
                    {
                        "user_id": k,
                        # worker 1's events are always the newer ones
                        "event_timestamp": T0 + timedelta(minutes=i + 100 * worker),
                        "x": worker * 1000 + i,
                        "tag": f"w{worker}",
                        "score": float(i),
                    }
                    for k in range(KEYS)
                ],
            )


def test_two_writer_processes(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, stats_view()])
    store.close()  # the parent holds nothing open while the children write
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(repo), w)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=180)
    assert [p.exitcode for p in workers] == [0, 0]

    with FeatureStore(repo) as fresh:
        table = fresh.get_feature_view("stats").table_name
        assert fresh.delta.version(table) == 2 * WRITES - 1  # one version per write, none lost
        counts = fresh.sql("select tag, count(*) as n from stats group by tag order by tag").to_pylist()
        assert counts == [{"tag": "w0", "n": WRITES * KEYS}, {"tag": "w1", "n": WRITES * KEYS}]
        online = fresh.get_online_features(["stats:x"], [{"user_id": k} for k in range(KEYS)]).to_dict()
        assert online["x"] == [1000 + WRITES - 1] * KEYS
