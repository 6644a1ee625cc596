"""`strato serve` as a process: several workers on one LMDB store, and a clean SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from server.conftest import Server, start_server


@pytest.fixture(scope="module")
def two_workers(repo: Path) -> Iterator[Server]:
    s = start_server(repo, "--workers", "2", "--no-auth")
    yield s
    s.stop()


def test_two_workers_share_the_store(two_workers: Server) -> None:
    """Writes through one connection are read through many others, whichever worker answers."""
    now = datetime.now(UTC).isoformat()
    with two_workers.client() as c:
        r = c.post(
            "/push",
            json={
                "feature_view": "stats",
                "df": {"user_id": [77], "event_timestamp": [now], "x": [9], "score": [2.5], "tag": ["k"]},
            },
        )
        assert r.status_code == 200, r.text
    pids: set[int] = set()
    for _ in range(300):
        with httpx.Client(base_url=two_workers.url, timeout=10) as c:  # a new connection each time
            r = c.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [77]}})
            assert r.status_code == 200
            assert r.json()["results"][1]["values"] == [9]
            pids.add(c.get("/health").json()["worker"])
        if len(pids) == 2:
            break
    assert len(pids) == 2, "every connection went to one worker"
    assert two_workers.process.pid not in pids


def test_sigterm_exits_zero_after_in_flight_requests(repo: Path) -> None:
    s = start_server(repo)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            with s.client() as c:
                for _ in range(50):
                    r = c.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [1]}})
                    assert r.status_code == 200
        except httpx.TransportError:
            pass  # connections refused once the server has stopped listening
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=hammer)
    worker.start()
    os.kill(s.process.pid, signal.SIGTERM)
    assert s.process.wait(30) == 0, s.log.read_text()
    worker.join(30)
    assert not errors
    assert "Traceback" not in s.log.read_text()


def test_sigterm_with_two_workers_exits_zero(two_workers: Server) -> None:
    assert two_workers.stop() == 0, two_workers.log.read_text()


def test_serve_without_applied_repo_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from strato.config import write_default_config

    write_default_config(tmp_path, "empty")
    strato = Path(sys.executable).parent / "strato"
    done = subprocess.run(
        [str(strato), "serve", "--repo", str(tmp_path), "--port", "1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
