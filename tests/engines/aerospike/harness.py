"""Harness of the Aerospike online store: one real server per pytest session, a fresh set prefix per store.

The server is the Community Edition bundle beside the repository (``<repo>/../shared/engines/aerospike``,
or the folder named by ``STRATO_AEROSPIKE_BUNDLE``): started lazily on first use, in a temporary
directory, on free loopback ports, and stopped with its own ``stop-aerospike`` when the interpreter
exits. Where the bundle is missing, every Aerospike test skips, saying why. Each `options` call
gets a unique ``set_prefix``, so every test starts from an empty store on the shared server.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
# The contract suite loads this file by path and the Aerospike tests import it as a module:
# two module objects, one session. The state lives in one shared namespace so both reach
# the same server and never hand out the same set prefix.
_STATE: Any = sys.modules.setdefault("_strato_aerospike_harness_state", types.ModuleType("state"))
if not hasattr(_STATE, "lock"):
    _STATE.lock = threading.Lock()
    _STATE.counter = itertools.count()
    _STATE.run = uuid.uuid4().hex[:6]
    _STATE.server = None


def bundle() -> Path:
    """The server bundle's folder (the nearest ``shared/engines/aerospike`` above the repo); skips the calling test, printing why, when it is missing."""
    configured = os.environ.get("STRATO_AEROSPIKE_BUNDLE")
    if configured:
        folder = Path(configured)
    else:  # <repo>/../shared/engines/aerospike, also from a git worktree nested deeper
        candidates = [parent / "shared" / "engines" / "aerospike" for parent in REPO.parents]
        folder = next((c for c in candidates if c.is_dir()), candidates[0])
    if not (folder / "start-aerospike").is_file():
        origin = "STRATO_AEROSPIKE_BUNDLE" if configured else "the default location"
        pytest.skip(f"no Aerospike server bundle at {folder} ({origin}): Aerospike tests need its start-aerospike")
    return folder


class Server:
    """One running `asd`, started by `start` and stopped by `stop`."""

    def __init__(self, folder: Path, workdir: Path):
        self.folder = folder
        self.workdir = workdir
        self.address = ""

    def start(self, port: str | None = None) -> str:
        """Start `asd` (on `port` and the three after it, when given); the address it listens on."""
        done = subprocess.run(
            [str(self.folder / "start-aerospike"), str(self.workdir), *([port] if port else [])],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"start-aerospike failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        self.address = done.stdout.strip()
        return self.address

    def stop(self) -> None:
        subprocess.run([str(self.folder / "stop-aerospike"), str(self.workdir)], capture_output=True, timeout=60)


def start_server(*, restartable: bool = False) -> Server:
    """A new server of its own, in a new temporary folder; the caller stops it (`stop` or `discard`).

    `restartable`: on four ports below Linux's ephemeral range (32768 up), so that no client
    connection can be handed one of them while the server is down and `restart` finds them free.
    """
    folder = bundle()
    server = Server(folder, Path(tempfile.mkdtemp(prefix="strato-aerospike-")))
    server.start(_low_ports() if restartable else None)
    return server


def _low_ports() -> str:
    """A base port P in 20000-32000 with P..P+3 free on loopback."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20_000, 32_000 - 4)
        try:
            for port in range(base, base + 4):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return str(base)
    raise RuntimeError("no four free loopback ports below 32000")


def restart(server: Server, port: str, within_s: float = 90.0) -> None:
    """Start a stopped server again on the same port, so clients that knew it find it back.

    The stopped server closed its connections first, so its ports may sit in TIME_WAIT (or
    one of the four may have been lent out as another connection's ephemeral port) for up
    to a minute: `start-aerospike PORT` then refuses at once, and this tries again.
    """
    deadline = time.monotonic() + within_s
    while True:
        done = subprocess.run(
            [str(server.folder / "start-aerospike"), str(server.workdir), port],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if done.returncode == 0:
            server.address = done.stdout.strip()
            return
        if "in use" not in done.stderr or time.monotonic() > deadline:
            pytest.fail(f"restarting asd on port {port} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        time.sleep(2)


def discard(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


def shared_server() -> Server:
    """The session's server, started on first use and stopped at interpreter exit."""
    with _STATE.lock:
        if _STATE.server is None:
            server = start_server()
            atexit.register(discard, server)
            _STATE.server = server
        shared: Server = _STATE.server
        return shared


def options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store: the shared server, a set prefix no other call gets."""
    server = shared_server()
    return {"hosts": [server.address], "set_prefix": f"t{_STATE.run}{next(_STATE.counter)}_"}
