"""One write order per repo: the created timestamp of every write, unique and increasing.

Design rule 10: ties between writes of the same (keys, event time) go to the latest write,
offline (the greatest ``created_timestamp`` in history) and online (rule 4 compares event
time, then created time) alike. That holds only if no two writes get the same created time.
A per-`FeatureStore` counter did not ensure it: two stores (threads, processes) writing in
the same microsecond got equal stamps, and then history kept an arbitrary row while online
kept whichever upsert came last.

`WriteClock` hands out ``created_us = max(now_us, last + 1)``, where ``last`` is the
previous stamp given to any writer of the repo: it lives in a small file under the repo's
``.strato/`` folder, read and rewritten through a shared memory map under an exclusive ``flock`` (about 3 µs
per write on a quiet machine; no fsync: a process crash keeps the page cache, and after a reboot the wall clock is past it).
A thread lock serializes threads of one process, which share the file lock. The stamps
stay within a microsecond of the wall clock unless writes come faster than one per µs, or
the clock steps back — then they run ahead of it until it catches up.

Scope: writers on one machine sharing the repo folder. Writers on several machines share no
file; their stamps are ordered by their clocks, and equal ones stay possible.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
from pathlib import Path
from typing import Final

from strato import clock
from strato.errors import BackendFailure

try:
    import fcntl
except ImportError:  # Windows: no flock; the thread lock still orders one process's writes
    fcntl = None  # type: ignore[assignment]

CLOCK_FILE = "write-clock"
"""The file under ``<repo>/.strato/`` that holds the last stamp (8 bytes, little-endian µs)."""
_STAMP: Final = struct.Struct("<q")


class WriteClock:
    """Created timestamps (µs since the epoch) for the writes of one repo, in one total order.

    Safe to share between threads; every process (and every `FeatureStore`) opening the same
    path takes part in the same order. The file is created on the first stamp, so opening a
    store for reading creates nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._last = 0  # this process's last stamp: the order holds even without a file lock

    def next_us(self) -> int:
        """A stamp greater than every stamp handed out before it, to any writer of the repo."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            fd, shared = self._open()
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                last: int = max(self._last, _STAMP.unpack_from(shared)[0])
                stamp = max(clock.now_us(), last + 1)
                _STAMP.pack_into(shared, 0, stamp)
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            self._last = stamp
            return stamp

    def close(self) -> None:
        """Close the file; a later `next_us` opens it again."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _open(self) -> tuple[int, mmap.mmap]:
        if self._fd is None or self._map is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
                try:
                    if os.fstat(fd).st_size < _STAMP.size:
                        os.ftruncate(fd, _STAMP.size)  # a new file: zero bytes, stamp 0
                    self._map = mmap.mmap(fd, _STAMP.size)
                except OSError:
                    os.close(fd)
                    raise
            except OSError as exc:
                raise BackendFailure(f"cannot open the repo's write clock {self.path}: {exc.strerror}") from exc
            self._fd = fd
        return self._fd, self._map

    def _after_fork(self) -> None:
        """A forked child shares its parent's open file description, and so its flock: reopen.

        The thread lock is replaced too, in case another thread of the parent held it. Closing
        the inherited descriptor does not release the parent's lock: the parent still holds one.
        """
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._release()
