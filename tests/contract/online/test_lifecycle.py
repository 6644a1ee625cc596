"""Opening, closing and reopening: what `Capabilities.persistent` promises, and a clean end.

A closed store refuses further calls with a `BackendError` rather than crashing or
silently reviving; `close` may be called twice; the context manager closes. Persistence
is a capability: a backend not declaring it skips that test with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from strato.errors import BackendError
from strato.online.codec import HEADER

if TYPE_CHECKING:
    from .conftest import Backend

VALUE = HEADER.pack(1, 1) + b"v"


def test_data_survives_reopen_when_persistent(online_backend: Backend) -> None:
    if not online_backend.cls.capabilities.persistent:
        pytest.skip(f"{online_backend.name} does not declare `persistent`: its data ends with close()")
    store = online_backend.open()
    store.write("t", [b"k", b"gone"], [VALUE, VALUE])
    store.write("dropped", [b"k"], [VALUE])
    store.drop("dropped")
    store.close()
    again = online_backend.open()
    assert again.read("t", [b"k", b"missing"]) == [VALUE, None]
    assert again.read("dropped", [b"k"]) == [None]
    assert again.write("t", [b"k"], [HEADER.pack(0, 9)]) == 0  # rule 4 still compares with the stored value


def test_a_closed_store_refuses_calls(online_backend: Backend) -> None:
    store = online_backend.open()
    store.write("t", [b"k"], [VALUE])
    store.close()
    with pytest.raises(BackendError, match="closed"):
        store.read("t", [b"k"])
    with pytest.raises(BackendError, match="closed"):
        store.write("t", [b"k"], [VALUE])
    with pytest.raises(BackendError, match="closed"):
        store.drop("t")
    store.close()  # a second close is a no-op


def test_closing_one_store_leaves_another_open(online_backend: Backend) -> None:
    first, second = online_backend.open("p"), online_backend.open("p")
    first.write("t", [b"k"], [VALUE])
    first.close()
    second.write("t", [b"j"], [VALUE])
    assert second.read("t", [b"j"]) == [VALUE]


def test_context_manager_closes(online_backend: Backend) -> None:
    with online_backend.open() as store:
        store.write("t", [b"k"], [VALUE])
        assert store.read("t", [b"k"]) == [VALUE]
    with pytest.raises(BackendError):
        store.read("t", [b"k"])
