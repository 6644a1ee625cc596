"""A write is all or nothing (design rule 7: nothing partial is written).

What the interface guarantees, and these tests hold every backend to:

* ``len(keys) != len(values)`` raises ``ValueError`` before anything is written;
* an exception raised while the batch is read (a failing sequence, a key that is not
  bytes, a value that is not bytes holding at least the 16-byte codec header: `TypeError`)
  propagates unchanged, not wrapped as a backend error — it is the caller's
  bug — and leaves the store exactly as it was, earlier items of the batch included;
* the store stays usable afterwards.

Engine failures inside the transaction (a full disk) are engine-specific and are tested
in ``tests/engines/<name>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import pytest

from strato.errors import StratoError
from strato.online.base import OnlineStore
from strato.online.codec import HEADER

KEYS = [f"k{i}".encode() for i in range(10)]


def v(event: int, tag: bytes = b"") -> bytes:
    return HEADER.pack(event, 0) + tag


class Boom(Exception):
    """Raised by a sequence that fails part-way through."""


class Exploding(Sequence[bytes]):
    """A sequence whose item `at` raises, as a lazily decoded column might."""

    def __init__(self, items: Sequence[bytes], at: int):
        self.items = list(items)
        self.at = at

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return Exploding(self.items[index], self.at - (index.start or 0))
        if index == self.at or (index < 0 and index + len(self.items) == self.at):
            raise Boom(f"item {index}")
        return self.items[index]

    def __iter__(self) -> Iterator[bytes]:
        for i in range(len(self.items)):
            yield self[i]


@pytest.fixture
def seeded(online_store: OnlineStore) -> OnlineStore:
    """A store holding event 5 under the first half of KEYS; the rest is absent."""
    online_store.write("t", KEYS[:5], [v(5, b"old")] * 5)
    return online_store


def snapshot(store: OnlineStore) -> list[bytes | None]:
    return store.read("t", KEYS)


def newer_batch() -> list[bytes]:
    return [v(9, b"new")] * len(KEYS)


def assert_unchanged_and_usable(store: OnlineStore, before: list[bytes | None]) -> None:
    assert snapshot(store) == before
    assert store.write("t", KEYS, newer_batch()) == len(KEYS)
    assert snapshot(store) == newer_batch()


@pytest.mark.parametrize(("n_keys", "n_values"), [(10, 9), (9, 10), (0, 1), (1, 0)])
def test_length_mismatch(seeded: OnlineStore, n_keys: int, n_values: int) -> None:
    before = snapshot(seeded)
    with pytest.raises(ValueError, match="keys"):
        seeded.write("t", KEYS[:n_keys], newer_batch()[:n_values])
    assert_unchanged_and_usable(seeded, before)


@pytest.mark.parametrize("at", [0, 3, 9])
def test_values_failing_part_way(seeded: OnlineStore, at: int) -> None:
    before = snapshot(seeded)
    with pytest.raises(Boom):
        seeded.write("t", KEYS, Exploding(newer_batch(), at))
    assert_unchanged_and_usable(seeded, before)


@pytest.mark.parametrize("at", [0, 6, 9])
def test_keys_failing_part_way(seeded: OnlineStore, at: int) -> None:
    before = snapshot(seeded)
    with pytest.raises(Boom):
        seeded.write("t", Exploding(KEYS, at), newer_batch())
    assert_unchanged_and_usable(seeded, before)


BAD_ITEMS = [("key", "a str"), ("key", 123), ("key", None), ("value", "a str"), ("value", 123), ("value", None)]
BAD_ITEMS += [("value", b"short")]  # any bytes make a key, but a value starts with the 16-byte header


@pytest.mark.parametrize(("where", "bad"), BAD_ITEMS)
def test_a_malformed_item(seeded: OnlineStore, where: str, bad: object) -> None:
    before = snapshot(seeded)
    keys: list[object] = list(KEYS)
    values: list[object] = newer_batch()
    (keys if where == "key" else values)[7] = bad
    with pytest.raises(TypeError) as info:
        seeded.write("t", keys, values)  # type: ignore[arg-type]
    assert not isinstance(info.value, StratoError)
    assert_unchanged_and_usable(seeded, before)
