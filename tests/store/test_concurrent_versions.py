"""Issue 7 item 7: writers and readers while another process changes a view.

A writer must land in the current version or fail clearly (never in a retired storage
after the apply returned); a reader must never fail because of a compatible change.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from strato import FeatureService, FeatureStore, FeatureView, Field, Float64, Int64
from strato.errors import ConflictError

from .helpers import USER, online

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
K1 = FeatureView("k", entities=[USER], schema=[Field("x", Int64)])
K1_RENEWED = FeatureView("k", entities=[USER], schema=[Field("x", Int64)], description="new storage, same rows")
K2 = FeatureView("k", entities=[USER], schema=[Field("x", Int64), Field("y", Float64)])


def _write_loop(repo: str, acked: Any, stop: Any, out: str) -> None:
    """Write one new key per call until told to stop; report what was acknowledged."""
    done: list[int] = []
    conflicts: list[str] = []
    failures: list[str] = []
    with FeatureStore(repo) as store:
        i = 0
        while not stop.is_set():
            try:
                store.write("k", [{"user_id": i, "event_timestamp": T0, "x": i}])
                done.append(i)
                acked.value = len(done)
            except ConflictError as exc:
                conflicts.append(str(exc))
            except Exception as exc:  # anything else is a failure of the test
                failures.append(f"{type(exc).__name__}: {exc}")
            i += 1
    Path(out).write_text(json.dumps({"acked": done, "conflicts": conflicts, "failures": failures}))


def _wait_for(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_writer_in_another_process_never_writes_to_retired_storage(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, K1])
    ctx = mp.get_context("spawn")
    acked, stop = ctx.Value("i", 0), ctx.Event()
    out = repo / "writer.json"
    writer = ctx.Process(target=_write_loop, args=(str(repo), acked, stop, str(out)))
    writer.start()
    try:
        _wait_for(lambda: acked.value >= 10, "the writer's first writes")
        old = store.get_feature_view("k")
        store.apply([USER, K1_RENEWED], new_version=["k"])
        retired_at = store.delta.version(old.table_name)
        after_apply = acked.value
        _wait_for(lambda: acked.value >= after_apply + 10, "writes after the apply")
    finally:
        stop.set()
        writer.join(timeout=120)
    assert writer.exitcode == 0
    report = json.loads(out.read_text())
    assert report["failures"] == []
    for message in report["conflicts"]:
        assert message.startswith("feature view 'k' moved to version 2 while writing; nothing written")

    store.refresh()
    new = store.get_feature_view("k")
    assert new.table_name == "k__v2"
    assert store.delta.version(old.table_name) == retired_at  # nothing landed there after apply returned
    current = store.offline_engine.read(store.delta.snapshot(new.table_name))  # type: ignore[arg-type]
    retired = store.offline_engine.read(store.delta.snapshot(old.table_name))  # type: ignore[arg-type]
    in_current = set(current.column("x").to_pylist())
    acked_ids = report["acked"]
    assert set(acked_ids) <= in_current  # every acknowledged write is in the current version
    assert set(retired.column("x").to_pylist()) <= in_current  # and the old rows were carried over
    assert current.num_rows == len(in_current)  # each exactly once
    assert online(store, ["k:x"], acked_ids)["x"] == acked_ids


def _read_loop(repo: str, started: Any, stop: Any, out: str) -> None:
    """Serve through a feature service read fresh each time (as a server would)."""
    errors: list[str] = []
    reads = 0
    with FeatureStore(repo) as store:
        while not stop.is_set():
            try:
                service = store.get_feature_service("svc")
                store.get_online_features(service, [{"user_id": 1}, {"user_id": 2}]).to_dict()
                reads += 1
                started.set()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    Path(out).write_text(json.dumps({"reads": reads, "errors": errors[:5], "error_count": len(errors)}))


def test_a_reader_in_another_process_never_fails_on_an_added_field(store: FeatureStore, repo: Path) -> None:
    store.apply([USER, K1, FeatureService("svc", ["k:x"])])
    store.write("k", [{"user_id": 1, "event_timestamp": T0, "x": 1}])
    ctx = mp.get_context("spawn")
    started, stop = ctx.Event(), ctx.Event()
    out = repo / "reader.json"
    reader = ctx.Process(target=_read_loop, args=(str(repo), started, stop, str(out)))
    reader.start()
    try:
        assert started.wait(timeout=120)
        store.apply([USER, K2, FeatureService("svc", ["k:x", "k:y"])])
        for i in range(20):  # values in the new layout, while the reader may hold the old one
            store.write("k", [{"user_id": 2, "event_timestamp": T0 + timedelta(seconds=i), "x": i, "y": 0.5}])
        time.sleep(1.5)  # past the reader's registry re-check
    finally:
        stop.set()
        reader.join(timeout=120)
    assert reader.exitcode == 0
    report = json.loads(out.read_text())
    assert (report["error_count"], report["errors"]) == (0, [])
    assert report["reads"] > 0


def test_a_fresh_service_and_a_cached_view_agree_in_one_process(store: FeatureStore, repo: Path) -> None:
    """The report's failure, deterministically: the service is newer than the cached view."""
    store.apply([USER, K1, FeatureService("svc", ["k:x"])])
    store.write("k", [{"user_id": 1, "event_timestamp": T0, "x": 1}])
    assert store.get_online_features(store.get_feature_service("svc"), [{"user_id": 1}]).to_dict()["x"] == [1]
    with FeatureStore(repo) as admin:
        admin.apply([USER, K2, FeatureService("svc", ["k:x", "k:y"])])
        admin.write("k", [{"user_id": 2, "event_timestamp": T0, "x": 2, "y": 0.5}])
    service = store.get_feature_service("svc")  # read fresh: it names k:y, which the cached view lacks
    response = store.get_online_features(service, [{"user_id": 1}, {"user_id": 2}]).to_dict()
    assert response == {"user_id": [1, 2], "x": [1, 2], "y": [None, 0.5]}
