"""Object storage for the offline store (issue 10, item 4), on a real S3 server (s3proxy) on loopback.

The offline contract suite runs on S3 too (its `tables` fixture); these tests cover what lies
above it: strato.yaml's ``offline.storage_options`` and the ``AWS_*`` environment, a whole
feature repo whose history is in a bucket (writes, point-in-time join against the oracle,
time travel, compaction and vacuum with a rebuilt training set), DuckDB and Spark reading the
same tables, concurrent commits losing nothing, and `strato doctor` on a reachable and an
unreachable bucket.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
import yaml

from strato import Entity, FeatureService, FeatureStore, FeatureView, Field, Float64, Int64, String
from strato.config import load_config
from strato.errors import ConfigError
from strato.offline import storage
from strato.offline.delta import DeltaTables
from strato.offline.pit import PitRequest
from strato.store.doctor import diagnose

from . import harness
from .server import S3Server

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from oracles import pit_join_oracle  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
USER = Entity("user", join_keys={"user_id": Int64})
STATS = FeatureView("stats", entities=[USER], schema=[Field("x", Int64), Field("tag", String), Field("score", Float64)])
REFS = ["stats:x", "stats:tag", "stats:score"]


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own AWS_* variables must not leak into these tests' stores."""
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


def _repo(folder: Path, root: str, options: dict[str, Any] | None, *, engine: str = "duckdb") -> Path:
    offline: dict[str, Any] = {"path": root, "engine": engine}
    if options is not None:
        offline["storage_options"] = options
    config = {
        "project": "proj",
        "registry": ".strato/registry.db",
        "offline": offline,
        "online": {"type": "lmdb", "path": ".strato/online"},
    }
    (folder / "strato.yaml").write_text(yaml.safe_dump(config))
    return folder


def _files(store: FeatureStore, table: str = "stats__v1") -> set[str]:
    path = store.delta.path(table)
    fs, inner = storage.filesystem(path, store.config.offline_storage_options)
    infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    return {i.path.rsplit("/", 1)[-1] for i in infos if i.path.endswith(".parquet")}


def _entities() -> pa.Table:
    times = [T0 + timedelta(minutes=m) for m in (5, 17, 33, 60, 200, -3)]
    return pa.table({"user_id": pa.array([1, 2, 3, 0, 1, 2], pa.int64()), "event_timestamp": pa.array(times, TS)})


def _rows(n: int, base: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "user_id": i % 4,
            "event_timestamp": T0 + timedelta(minutes=base + i),
            "x": base + i,
            "tag": f"w{base + i}",
            "score": (base + i) / 7,
        }
        for i in range(n)
    ]


# ---------------------------------------------------------------------- configuration


def test_storage_options_come_from_yaml_over_aws_environment(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "s3://bucket/prefix", {"aws_endpoint_url": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": True})
    env = {"AWS_ACCESS_KEY_ID": "from-env", "AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_ENDPOINT_URL": "http://env:1"}
    config = load_config(repo, environ=env)
    assert config.offline_path == "s3://bucket/prefix"  # a URI, never joined to the repo folder
    assert config.offline_storage_options == {
        "AWS_ACCESS_KEY_ID": "from-env",
        "AWS_SECRET_ACCESS_KEY": "s3cret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # strato.yaml wins over the ambient variable
        "AWS_ALLOW_HTTP": "true",
    }
    overridden = load_config(repo, environ={**env, "STRATO_OFFLINE__STORAGE_OPTIONS__AWS_REGION": "eu-west-1"})
    assert overridden.offline_storage_options["AWS_REGION"] == "eu-west-1"
    described = {key: (value, source) for key, value, source in config.describe()}
    assert described["offline.storage_options.AWS_SECRET_ACCESS_KEY"][0] == "***"
    assert described["offline.storage_options.AWS_ACCESS_KEY_ID"][0] == "***"
    assert described["offline.storage_options.AWS_ALLOW_HTTP"] == ("true", "strato.yaml")
    assert "s3cret" not in repr(config)


def test_storage_options_for_a_local_path_or_not_a_mapping_are_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path, ".strato/offline", {"AWS_REGION": "x"})
    with pytest.raises(ConfigError, match=r"offline.storage_options: given for a local offline.path"):
        load_config(repo, environ={})
    (tmp_path / "strato.yaml").write_text("project: p\noffline:\n  path: s3://b/p\n  storage_options: nope\n")
    with pytest.raises(ConfigError, match=r"offline.storage_options: must be a mapping"):
        load_config(tmp_path, environ={})
    (tmp_path / "strato.yaml").write_text("project: p\noffline:\n  path: s3://b/p\n  storage_options: {A: [1]}\n")
    with pytest.raises(ConfigError, match=r"offline.storage_options.A: expected a string"):
        load_config(tmp_path, environ={})
    # Local paths take no AWS_* variables: they are not storage options of anything.
    assert load_config(tmp_path / "none", environ={"AWS_REGION": "x"}).offline_storage_options == {}


# ---------------------------------------------------------------------- a feature repo in a bucket


@pytest.fixture
def s3_store(tmp_path: Path, s3: S3Server) -> Iterator[FeatureStore]:
    repo = _repo(tmp_path, harness.new_root("repo"), s3.storage_options)
    with FeatureStore(repo) as store:
        store.apply([USER, STATS, FeatureService("model", REFS)])
        yield store


def test_repo_on_s3_writes_joins_time_travels_compacts_and_vacuums(s3_store: FeatureStore) -> None:
    store = s3_store
    written = _rows(12)
    for row in written:
        store.write("stats", [row])
    snapshot = store.delta.snapshot("stats__v1")
    assert snapshot is not None
    assert snapshot.path.startswith("s3://")
    assert all(f.startswith("s3://") for f in snapshot.files)
    assert len(snapshot.files) == 12
    # Point-in-time join against the brute-force oracle (rule 3).
    got = store.get_historical_features(_entities(), REFS).table
    history = [{**r, "created_timestamp": r["event_timestamp"]} for r in written]  # no ties: created unused
    spine = _entities().to_pylist()
    want = pit_join_oracle(spine, history, join_keys=["user_id"], features=["x", "tag", "score"])
    assert got.select(["user_id", "event_timestamp", "x", "tag", "score"]).to_pylist() == want
    # A training set pins the version; later writes, compaction and vacuum keep it rebuildable.
    saved = store.create_training_set("ts", "model", _entities())
    for row in _rows(4, base=100):
        store.write("stats", [row])
    [done] = store.compact()
    assert (done.files_removed, done.files_added) == (16, 1)
    assert len(_files(store)) == 17
    report = store.vacuum(timedelta(0), force=True)
    assert len(report.deleted["stats__v1"]) == 4  # the unpinned files the compaction replaced
    assert len(_files(store)) == 13  # the pinned 12 and the compacted one
    rebuilt = store.rebuild_training_set("ts")
    assert rebuilt.matches
    assert rebuilt.table.equals(saved.table)
    # Time travel by version reads exactly what was there then.
    old = store.delta.snapshot("stats__v1", as_of=3)
    assert old is not None
    assert store.offline_engine.read(old).num_rows == 4
    # Materialize from the bucket into the online store.
    store.materialize(None, T0 + timedelta(days=1))
    online = store.get_online_features(["stats:x"], [{"user_id": u} for u in range(4)]).to_dict()
    assert online["x"] == [100, 101, 102, 103]


#: pyspark leaves each collect's loopback socket to the garbage collector (as in the contract suite).
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_duckdb_and_spark_read_the_same_tables_on_s3(s3_store: FeatureStore) -> None:
    from engines.spark import harness as spark_harness

    spark = spark_harness.engine()
    store = s3_store
    store.write("stats", _rows(10))
    store.write("stats", _rows(10, base=5))  # later writes of the same times for some users
    snapshot = store.delta.snapshot("stats__v1")
    assert snapshot is not None
    duck = store.offline_engine.read(snapshot).sort_by([("created_timestamp", "ascending"), ("x", "ascending")])
    sparked = spark.read(snapshot).sort_by([("created_timestamp", "ascending"), ("x", "ascending")])
    assert sparked.equals(duck)
    request = PitRequest(snapshot, ["user_id"], ["x", "tag"], ["x", "tag"], [pa.int64(), pa.string()])
    assert spark.point_in_time_join(_entities(), [request]).equals(
        store.offline_engine.point_in_time_join(_entities(), [request])
    )
    # delta-spark itself reads the log on S3 too (read: delta, on the same session), pinned to the version.
    from strato.offline.engines.spark import SparkOfflineEngine

    native = SparkOfflineEngine.open(spark_harness.OPTIONS.model_copy(update={"read": "delta"}))
    native.serve_storage(snapshot.path)
    assert native.read(snapshot).sort_by([("created_timestamp", "ascending"), ("x", "ascending")]).equals(duck)
    first = store.delta.snapshot("stats__v1", as_of=0)
    assert first is not None
    assert native.read(first).num_rows == 10  # the first write alone
    assert "AWS_SECRET_ACCESS_KEY" not in repr(snapshot)  # the options travel with it, unprinted


def test_concurrent_appends_to_one_table_on_s3_all_land(s3: S3Server) -> None:
    """Rule 1 on object storage: each append is its own commit, none overwrites another.

    delta-rs writes a commit file only if absent (``If-None-Match: *``); a server that ignored
    the header (s3proxy 2.6) lost most of these commits without an error.
    """
    tables = DeltaTables(harness.new_root("concurrent"), "proj", s3.storage_options)
    schema = pa.schema([("user_id", pa.int64()), ("x", pa.int64())])
    tables.append("t", pa.table({"user_id": [0], "x": [0]}, schema=schema))
    errors: list[BaseException] = []

    def append(i: int) -> None:
        try:
            tables.append("t", pa.table({"user_id": [i], "x": [i]}, schema=schema))
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert tables.version("t") == 6
    snapshot = tables.snapshot("t")
    assert snapshot is not None
    read = storage.dataset(snapshot).to_table()
    assert sorted(read.column("user_id").to_pylist()) == list(range(7))


# ---------------------------------------------------------------------- doctor


def _checks(repo: Path) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in diagnose(repo).checks}


def test_doctor_checks_the_bucket_is_reachable(tmp_path: Path, s3: S3Server) -> None:
    good = tmp_path / "good"
    good.mkdir()
    root = harness.new_root("doctor")
    _repo(good, root, s3.storage_options)
    with FeatureStore(good) as store:
        store.apply([USER, STATS])
        store.write("stats", _rows(2))
    checks = _checks(good)
    assert checks["object store"] == (True, f"{root} is reachable and lists")
    assert checks["view stats"][0], checks["view stats"]

    missing = tmp_path / "missing"
    missing.mkdir()
    _repo(missing, "s3://no-such-bucket/p", s3.storage_options)
    ok, detail = _checks(missing)["object store"]
    assert not ok
    assert "bucket 'no-such-bucket'" in detail
    assert "does not exist" in detail

    wrong_key = tmp_path / "wrong_key"
    wrong_key.mkdir()
    _repo(wrong_key, root, {**s3.storage_options, "AWS_SECRET_ACCESS_KEY": "not-it"})
    ok, detail = _checks(wrong_key)["object store"]
    assert not ok
    assert "not-it" not in detail  # never the secret

    closed = tmp_path / "closed"
    closed.mkdir()
    _repo(closed, root, {**s3.storage_options, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"})
    ok, detail = _checks(closed)["object store"]
    assert not ok
    assert "is not reachable" in detail


def _closed_port() -> int:
    from .server import free_port

    return free_port()  # bound and released: nothing listens there
