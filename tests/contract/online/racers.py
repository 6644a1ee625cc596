"""A counter incremented by compare-and-set: the racer of `test_write_if`, importable by spawned processes.

Kept apart from the test module so that a spawned child imports only this, not the contract
suite's conftest and its harnesses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from strato import plugins
from strato.online.base import OnlineStore
from strato.online.codec import HEADER, HEADER_SIZE

COUNTER_TABLE = "cas_counters__v1"


def count_of(value: bytes | None) -> int:
    """The count a counter value holds (0: absent)."""
    return 0 if value is None else int(value[HEADER_SIZE:].split(b"/")[0])


def increment(backend: str | None, store: Any, racer: int, keys: Sequence[bytes], times: int, start: Any) -> None:
    """Add 1 to each counter `times` times, each a read, +1, `write_if` retried until it wins.

    `backend` None: `store` is an open `OnlineStore`; else `store` is the options (a dict) of
    backend `backend`, opened here (in a spawned process).
    """
    own: OnlineStore | None = None
    if backend is not None:
        cls = plugins.load("online", backend)
        own = store = cls.open(cls.options_model(**store), project="contract")
    start.wait(60)
    rng = random.Random(racer)
    try:
        for _ in range(times):
            pending = list(keys)
            tries = 0
            while pending:
                tries += 1
                if tries > 10_000:
                    raise RuntimeError(f"racer {racer} could not win {pending!r} in 10000 tries")
                stored = store.read(COUNTER_TABLE, pending)
                # The racer's tag makes every racer's bytes differ even for the same count.
                new = [
                    HEADER.pack(count_of(old) + 1, racer) + f"{count_of(old) + 1}/{racer}".encode() for old in stored
                ]
                won = store.write_if(COUNTER_TABLE, pending, stored, new)
                pending = [key for key, ok in zip(pending, won, strict=True) if not ok]
                if pending:
                    time.sleep(rng.random() * 0.002)
    finally:
        if own is not None:
            own.close()
