"""A backend that stops answering: the request gets a 504 within `server.backend_timeout_s`,
the server keeps serving everything else, and recovers by itself once the backend is back.

The backend is a real `redis-server` of this test's own (the Redis harness), frozen with
SIGSTOP and thawed with SIGCONT by its PID: to the server it looks like a host that hangs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engines.redis import harness
from server.conftest import STATS, USER, Server, start_server
from strato import FeatureStore
from strato.config import write_default_config

TIMEOUT_S = 0.5


@dataclass
class Frozen:
    redis: harness.RedisServer
    server: Server

    def freeze(self) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frozen]:
    redis = harness.new_server()
    repo = tmp_path_factory.mktemp("timeout_repo")
    config = write_default_config(repo, "proj")
    text = config.read_text().replace("  type: lmdb                        # or: memory\n  path: .strato/online\n", "")
    # The server's timeout is well under Redis's own socket timeout, so the server's fires first.
    text += f"  type: redis\n  url: {redis.url}\n  key_prefix: 'timeout:'\n  socket_timeout_s: 3\n"
    config.write_text(text + f"server:\n  backend_timeout_s: {TIMEOUT_S}\n")
    with FeatureStore(repo) as store:
        store.apply([USER, STATS])
        store.write("stats", [{"user_id": 1, "event_timestamp": datetime.now(UTC), "x": 7, "score": 8.0, "tag": "a"}])
    server = start_server(repo)
    try:
        yield Frozen(redis, server)
    finally:
        if redis.process is not None:
            os.kill(redis.process.pid, signal.SIGCONT)
        server.stop()
        redis.stop()


_READ = {"features": ["stats:x", "stats:score"], "entities": {"user_id": [1]}}


def _push(user_id: int) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {
        "feature_view": "stats",
        "df": {"user_id": [user_id], "event_timestamp": [now], "x": [1], "score": [1.0], "tag": ["t"]},
    }


def test_a_stopped_backend_gives_504_and_the_server_keeps_serving(frozen: Frozen) -> None:
    with frozen.server.client() as client:
        r = client.post("/get-online-features", json=_READ)
        assert r.status_code == 200, r.text
        assert [res["values"] for res in r.json()["results"]] == [[1], [7], [8.0]]

        frozen.freeze()
        try:
            start = time.monotonic()
            r = client.post("/get-online-features", json=_READ)
            took = time.monotonic() - start
            assert r.status_code == 504, r.text
            error = r.json()["error"]
            assert "redis online store" in error, error
            assert f"{TIMEOUT_S:g} s" in error, error
            assert "backend_timeout_s" in error
            assert TIMEOUT_S <= took < TIMEOUT_S + 1.5, took
            # A write waits on the same backend: 504 too, and it says which view.
            r = client.post("/push", json=_push(2))
            assert r.status_code == 504, r.text
            assert "'stats'" in r.json()["error"]
            # Meanwhile the worker answers what needs no backend, at once.
            start = time.monotonic()
            assert client.get("/health").status_code == 200
            assert client.get("/list/feature-views").status_code == 200
            assert time.monotonic() - start < TIMEOUT_S
            metrics = client.get("/metrics").text
            assert 'strato_request_errors_total{endpoint="get-online-features",status="504"} 1.0' in metrics
        finally:
            frozen.thaw()

        # Back: the server recovers by itself, no restart (the stuck calls end on their threads).
        deadline = time.monotonic() + 10
        while True:
            r = client.post("/get-online-features", json=_READ)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert r.json()["results"][1]["values"] == [7]
        assert client.post("/push", json=_push(3)).status_code == 200
        assert "Traceback" not in frozen.server.log.read_text()


def test_the_timeout_is_a_validated_setting(tmp_path: Path) -> None:
    from strato.config import load_config
    from strato.errors import ConfigError

    (tmp_path / "strato.yaml").write_text("project: p\nserver:\n  backend_timeout_s: 0.25\n")
    assert load_config(tmp_path, environ={}).server.backend_timeout_s == 0.25
    assert load_config(tmp_path, environ={"STRATO_SERVER__BACKEND_TIMEOUT_S": "2"}).server.backend_timeout_s == 2
    with pytest.raises(ConfigError, match=r"backend_timeout_s.*greater than 0"):
        load_config(tmp_path, environ={"STRATO_SERVER__BACKEND_TIMEOUT_S": "0"})


def test_a_write_waiting_on_the_lmdb_write_lock_gives_504_while_reads_go_on(tmp_path: Path) -> None:
    """The embedded store too: another process holding LMDB's one write transaction (a long
    materialization, say) holds up a push past the timeout; reads, lock-free, go on."""
    import lmdb

    from server.conftest import make_repo

    repo = make_repo(tmp_path)
    server = start_server(repo, "--backend-timeout", str(TIMEOUT_S), "--no-auth")
    env = lmdb.open(str(repo / ".strato" / "online"), max_dbs=0, map_size=64 * 2**30)
    try:
        with server.client() as client:
            writer = env.begin(write=True)  # the env's writer lock, as another writer would hold it
            try:
                r = client.post("/push", json=_push(4))
                assert r.status_code == 504, r.text
                assert "the write to 'stats' did not finish" in r.json()["error"]
                r = client.post("/get-online-features", json=_READ)
                assert r.status_code == 200, r.text
                assert r.json()["results"][1]["values"] == [7]
            finally:
                writer.abort()
            # The lock gone, writes go through again (the timed-out one may land too: a 504 is
            # an unknown outcome, and a retry is safe, since the newer event wins anyway).
            # (On a loaded machine one push may itself take longer than the test's 0.5 s: retry.)
            deadline = time.monotonic() + 10
            while (status := client.post("/push", json=_push(5)).status_code) != 200:
                assert status == 504, status
                assert time.monotonic() < deadline, "pushes still time out after the lock is gone"
    finally:
        env.close()
        server.stop()
