"""Harness of the Redis online store: one real `redis-server` per test session, on loopback.

The server starts on first use (a free port, a temporary directory, no persistence files)
and is stopped by its PID when the session ends. Each `options()` call gets its own
`key_prefix`, so every test sees an empty store without flushing the server. Where
`redis-server` is not installed, the tests using it skip and say why.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One `redis-server` process this session started; `stop()` ends it by PID."""

    def __init__(self, port: int, directory: Path):
        self.port = port
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server not installed: `make test` installs it (scripts/ensure-test-engines)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# The contract suite loads this file by path and the Redis tests import it as a module: the
# session's server lives in one namespace both copies share, so the session starts one server.
_STATE = sys.modules.setdefault("_strato_redis_harness_state", types.ModuleType("_strato_redis_harness_state"))
if not hasattr(_STATE, "counter"):
    _STATE.server = None
    _STATE.counter = itertools.count()
    _STATE.run = uuid.uuid4().hex[:8]


def new_server() -> RedisServer:
    """A separate server (for tests that stop and restart it); the caller stops it."""
    return RedisServer(free_port(), Path(tempfile.mkdtemp(prefix="strato-redis-"))).start()


def server() -> RedisServer:
    """The session's shared server, started on first use."""
    shared: RedisServer | None = _STATE.server
    if shared is None or shared.process is None or shared.process.poll() is not None:
        shared = _STATE.server = new_server()
    return shared


def options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store: the shared server under a key prefix no other call uses."""
    return {"url": server().url, "key_prefix": f"t{_STATE.run}-{os.getpid()}-{next(_STATE.counter)}:"}
