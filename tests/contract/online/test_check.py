"""`OnlineStore.check` (`strato doctor`): a healthy store of every backend reports no problem,
before and after it holds data, and the probe it reads leaves no key behind."""

from __future__ import annotations

from strato.online.base import DOCTOR_TABLE, OnlineStore
from strato.online.codec import HEADER


def test_a_healthy_store_reports_no_problem(online_store: OnlineStore) -> None:
    assert online_store.check() == []
    assert online_store.read(DOCTOR_TABLE, [b"strato-doctor-probe"]) == [None]


def test_check_does_not_disturb_stored_values(online_store: OnlineStore) -> None:
    value = HEADER.pack(1_000_000, 1) + b"payload"
    assert online_store.write("t__v1", [b"k"], [value]) == 1
    assert online_store.check() == []
    assert online_store.read("t__v1", [b"k"]) == [value]
