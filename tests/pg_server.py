"""A real PostgreSQL server for the tests, from Debian's binaries, on loopback.

`shared()` starts one server per pytest session however many suites ask for it (the
registry contract suite, the PostgreSQL engine tests): `initdb` in a fresh temporary
folder, a free loopback port, the unix socket in that folder, fsync off. `release()` stops
it by PID when its last user is done. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user the Debian package creates (or ``nobody``).

Where the binaries are missing or the server does not start, `Unavailable` says why;
fixtures turn that into a skip with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "strato"


class Unavailable(Exception):
    """No PostgreSQL server can be had here; the message says why."""


def _binaries() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres`."""
    found = shutil.which("initdb")
    if found:
        folder = Path(os.path.realpath(found)).parent
        if (folder / "pg_ctl").exists() and (folder / "postgres").exists():
            return folder
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise Unavailable("PostgreSQL binaries (initdb, pg_ctl) not found; install Debian's postgresql package")


def _run_as() -> tuple[list[str], str | None]:
    """The command prefix that drops root, and the user it drops to (None when not root)."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise Unavailable("running as root and `runuser` is missing; PostgreSQL refuses to run as root")
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return [runuser, "-u", user, "--"], user
    raise Unavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One PostgreSQL cluster in a temporary folder; `start`/`stop` may be called repeatedly."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self.prefix, user = _run_as()
        self.folder = Path(tempfile.mkdtemp(prefix="strato-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self._names = itertools.count(1)
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._pg("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8")

    def _pg(self, tool: str, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.prefix, str(self.bin / tool), *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise Unavailable(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]} {log}".strip())

    def start(self) -> None:
        settings = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", settings, "-w", "-t", "60", "start")

    def pid(self) -> int | None:
        """The postmaster's PID, from its pid file; None when the server is down."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, PermissionError):
            return None

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT to the postmaster), waiting until it is gone."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with contextlib.suppress(Exception):
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_shared: Server | None = None
_users = 0


def shared() -> Server:
    """The session's server, started on first use; pair every call with `release()`."""
    global _shared, _users
    if _shared is None:
        server = Server()
        try:
            server.start()
        except BaseException:
            server.destroy()
            raise
        _shared = server
    _users += 1
    return _shared


def release() -> None:
    global _shared, _users
    _users -= 1
    if _users <= 0 and _shared is not None:
        _shared.destroy()
        _shared = None
