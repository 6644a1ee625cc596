"""Harness of the Redis online store: one real `redis-server` per test session, on loopback.

`cluster_options` does the same on a 3-master Redis Cluster (the redis_cluster harness).
The server starts on first use (a free port, a temporary directory, no persistence files)
and is stopped by its PID when the session ends. Each `options()` call gets its own
`key_prefix`, so every test sees an empty store without flushing the server. Where
`redis-server` is not installed, the tests using it skip and say why.
"""

from __future__ import annotations

import atexit
import itertools
import os
import random
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
        self.config: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> RedisServer:
        """Start (or restart, on the same port) the server; returns once it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server not installed: `make test` installs it (scripts/ensure-test-engines)")
        self.directory.mkdir(parents=True, exist_ok=True)
        where = ("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory))
        no_files = ("--save", "", "--appendonly", "no", "--daemonize", "no")
        self.process = subprocess.Popen(
            [binary, *where, *no_files, *self.config, *extra],
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
    _STATE.cluster = None
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


def free_cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20_000, 30_000)
        try:
            for p in (port, port + 10_000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


class RedisCluster:
    """Three masters (no replicas) made into one cluster with `redis-cli --cluster create`."""

    def __init__(self, nodes: list[RedisServer]):
        self.nodes = nodes

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def alive(self) -> bool:
        return all(n.process is not None and n.process.poll() is None for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def new_cluster(masters: int = 3) -> RedisCluster:
    """A fresh cluster on loopback; `stop()` (or the end of the session) ends its servers."""
    cli = shutil.which("redis-cli")
    if cli is None or shutil.which("redis-server") is None:
        pytest.skip("redis-server or redis-cli not installed: `make test` installs them (scripts/ensure-test-engines)")
    root = Path(tempfile.mkdtemp(prefix="strato-redis-cluster-"))
    nodes = []
    for _ in range(masters):
        node = RedisServer(free_cluster_port(), root / str(len(nodes)))
        node.config = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        node.config += ("--cluster-node-timeout", "3000")
        nodes.append(node.start())
    cluster = RedisCluster(nodes)
    addresses = [f"127.0.0.1:{n.port}" for n in nodes]
    try:
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        for node in nodes:
            while True:
                info = subprocess.run(
                    [cli, "-p", str(node.port), "cluster", "info"], capture_output=True, text=True, timeout=10
                ).stdout
                if "cluster_state:ok" in info:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Redis cluster on {addresses} not ready after 30 s: {info}")
                time.sleep(0.1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def cluster() -> RedisCluster:
    """The session's shared cluster, started on first use."""
    shared: RedisCluster | None = _STATE.cluster
    if shared is None or not shared.alive():
        shared = _STATE.cluster = new_cluster()
    return shared


def cluster_options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store on the session's cluster."""
    return {"url": cluster().url, "cluster": True, "key_prefix": f"t{_STATE.run}-{os.getpid()}-{next(_STATE.counter)}:"}


def options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store: the shared server under a key prefix no other call uses."""
    return {"url": server().url, "key_prefix": f"t{_STATE.run}-{os.getpid()}-{next(_STATE.counter)}:"}
