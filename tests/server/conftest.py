"""A real feature repo in a temp dir and a real `strato serve` process on a free loopback port.

Each test module starts its server once (module-scoped) and stops it by PID; tests talk to it
through httpx like any client would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from strato import Entity, FeatureService, FeatureStore, FeatureView, Field, Float64, Int64, String  # noqa: E402
from strato.config import write_default_config  # noqa: E402

USER = Entity("user", join_keys={"user_id": Int64})
STATS = FeatureView("stats", entities=[USER], schema=[Field("x", Int64), Field("score", Float64), Field("tag", String)])
RECENT = FeatureView("recent", entities=[USER], ttl=timedelta(days=1), schema=[Field("amount", Float64)])
SERVICE = FeatureService("svc", features=[STATS])
NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=10)


def make_repo(path: Path) -> Path:
    """A repo with two views (one with a 1-day ttl) and a service, and a few rows written."""
    write_default_config(path, "proj")
    with FeatureStore(path) as store:
        store.apply([USER, STATS, RECENT, SERVICE])
        store.write(
            "stats",
            [
                {"user_id": 1, "event_timestamp": NOW, "x": 7, "score": 8.0, "tag": "a"},
                {"user_id": 2, "event_timestamp": NOW, "x": 3, "score": None, "tag": "b"},
            ],
        )
        store.write(
            "recent",
            [
                {"user_id": 1, "event_timestamp": OLD, "amount": 1.5},
                {"user_id": 2, "event_timestamp": NOW, "amount": 2.0},
            ],
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout)


def start_server(repo: Path, *args: str) -> Server:
    """`strato serve` on `repo` with `args` (none: ``--no-auth``, the server tests before access control)."""
    port = free_port()
    log = repo / f"serve-{port}.log"
    strato = Path(sys.executable).parent / "strato"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(strato), "serve", "--repo", str(repo), "--port", str(port), *(args or ("--no-auth",))],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=repo,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"strato serve exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"strato serve did not answer /health within 60 s: {log.read_text()}")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    s = start_server(repo)
    yield s
    s.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def limited_server(repo: Path) -> Iterator[Server]:
    """A second server on the same repo with small limits: 4 KiB bodies, 100 rows a batch."""
    s = start_server(repo, "--max-body-bytes", "4096", "--max-batch-rows", "100", "--no-auth")
    yield s
    s.stop()


@pytest.fixture
def limited(limited_server: Server) -> Iterator[httpx.Client]:
    with limited_server.client() as c:
        yield c
