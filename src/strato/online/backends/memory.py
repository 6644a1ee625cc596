"""`MemoryOnlineStore`: the reference online backend, and the oracle of the property tests.

It is deliberately the plainest code that keeps the `OnlineStore` contract: one dict of
key bytes → value bytes per (project, table), guarded by one lock. Nothing survives
`close()`, and two `open` calls never share data; use it for tests, notebooks and demos.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar, Self

from strato.errors import BackendFailure
from strato.online.base import Capabilities, OnlineStore, StoreOptions
from strato.online.codec import HEADER_SIZE, check_cas_batch, header, is_newer


class MemoryOptions(StoreOptions):
    """The memory store has no options: its data lives and dies with the Python object."""


class MemoryOnlineStore(OnlineStore):
    """Latest values in process memory; thread-safe, not persistent."""

    name: ClassVar[str] = "memory"
    options_model: ClassVar[type[StoreOptions]] = MemoryOptions
    capabilities: ClassVar[Capabilities] = Capabilities(persistent=False, compare_and_set=True)

    def __init__(self, project: str):
        self.project = project
        self._lock = threading.Lock()
        self._tables: dict[str, dict[bytes, bytes]] | None = {}

    @classmethod
    def open(cls, options: StoreOptions, *, project: str) -> Self:
        if not isinstance(options, MemoryOptions):
            raise TypeError(f"MemoryOnlineStore.open needs MemoryOptions, got {type(options).__name__}")
        return cls(project)

    def _live(self) -> dict[str, dict[bytes, bytes]]:
        if self._tables is None:
            raise BackendFailure(f"the memory online store of project {self.project!r} is closed")
        return self._tables

    def write(self, table: str, keys: Sequence[bytes], values: Sequence[bytes], *, ttl: timedelta | None = None) -> int:
        if len(keys) != len(values):
            raise ValueError(f"write to {table!r}: {len(keys)} keys but {len(values)} values")
        with self._lock:
            stored = self._live().get(table, {})
            # Stage the whole batch first: if iterating `values` fails, nothing is applied.
            staged: dict[bytes, bytes] = {}
            for i, (key, value) in enumerate(zip(keys, values, strict=True)):
                if not isinstance(key, bytes):
                    raise TypeError(f"write to {table!r}: key {i} is not bytes: {key!r:.40}")
                if not isinstance(value, bytes) or len(value) < HEADER_SIZE:
                    raise TypeError(
                        f"write to {table!r}: value {i} is not an encoded value "
                        f"(bytes of at least {HEADER_SIZE}): {value!r:.40}"
                    )
                current = staged.get(key)
                if current is None:
                    current = stored.get(key)
                if current is None or is_newer(value, current):
                    staged[key] = value
            if staged:
                self._live().setdefault(table, {}).update(staged)
            return len(staged)

    def write_if(
        self, table: str, keys: Sequence[bytes], expected: Sequence[bytes | None], values: Sequence[bytes]
    ) -> list[bool]:
        items = check_cas_batch(keys, expected, values)
        with self._lock:  # compare and set under the one lock every write takes
            stored = self._live().setdefault(table, {})
            won = [stored.get(key) == old for key, old, _ in items]
            for (key, _, value), ok in zip(items, won, strict=True):
                if ok:
                    stored[key] = value
            return won

    def read(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        with self._lock:
            stored = self._live().get(table)
            if stored is None:
                return [None] * len(keys)
            get = stored.get
            return [get(key) for key in keys]

    def prune(self, table: str, older_than_us: int) -> int:
        with self._lock:
            stored = self._live().get(table)
            if not stored:
                return 0
            old = [key for key, value in stored.items() if header(value)[0] < older_than_us]
            for key in old:
                del stored[key]
            return len(old)

    def drop(self, table: str) -> None:
        with self._lock:
            self._live().pop(table, None)

    def close(self) -> None:
        with self._lock:
            self._tables = None
