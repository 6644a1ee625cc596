"""Tables and projects never see each other's keys, and `drop` removes exactly one table.

View versions are separate tables (``stats__v1``, ``stats__v2``) and projects share one
backend (one LMDB environment, one Redis cluster), so a leak between namespaces would
serve one model another's features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strato.online.base import OnlineStore
from strato.online.codec import HEADER

if TYPE_CHECKING:
    from .conftest import Backend

# Names chosen so that one is a prefix of another: a backend namespacing by plain
# concatenation ("t" + key vs "t__v1" + key) would mix them up.
TABLES = ["t", "t__v1", "t__v10", "t_", "T"]
KEYS = [b"", b"k", b"__v1", b"\x00", b"\x00k", b"\xff" * 8]


def v(tag: int) -> bytes:
    return HEADER.pack(0, 0) + tag.to_bytes(2, "big")


def fill(store: OnlineStore, tables: list[str], base: int) -> dict[tuple[str, bytes], bytes]:
    written = {}
    for ti, table in enumerate(tables):
        values = [v(base + 100 * ti + ki) for ki in range(len(KEYS))]
        store.write(table, KEYS, values)
        written.update({(table, k): val for k, val in zip(KEYS, values, strict=True)})
    return written


def contents(store: OnlineStore, tables: list[str]) -> dict[tuple[str, bytes], bytes]:
    found = {}
    for table in tables:
        for key, value in zip(KEYS, store.read(table, KEYS), strict=True):
            if value is not None:
                found[(table, key)] = value
    return found


def test_tables_are_isolated(online_store: OnlineStore) -> None:
    written = fill(online_store, TABLES, base=0)
    assert contents(online_store, TABLES) == written
    assert len(set(written.values())) == len(written)


def test_drop_removes_one_table_only(online_store: OnlineStore) -> None:
    written = fill(online_store, TABLES, base=0)
    online_store.drop("t")
    assert online_store.read("t", KEYS) == [None] * len(KEYS)
    assert contents(online_store, TABLES) == {k: val for k, val in written.items() if k[0] != "t"}
    online_store.drop("t__v1")
    assert contents(online_store, TABLES) == {k: val for k, val in written.items() if k[0] not in ("t", "t__v1")}


def test_drop_of_an_unknown_table_is_a_no_op(online_store: OnlineStore) -> None:
    written = fill(online_store, ["t"], base=0)
    online_store.drop("never_written")
    online_store.drop("t__v1")
    assert contents(online_store, ["t"]) == written


def test_a_dropped_table_can_be_written_again(online_store: OnlineStore) -> None:
    online_store.write("t", [b"k"], [HEADER.pack(100, 100)])
    online_store.drop("t")
    assert online_store.write("t", [b"k"], [HEADER.pack(1, 1)]) == 1  # no memory of the dropped, newer value
    assert online_store.read("t", [b"k"]) == [HEADER.pack(1, 1)]


def test_projects_are_isolated(online_backend: Backend) -> None:
    """Two projects opened on the same storage (same options) share nothing."""
    fraud, ads = online_backend.open("fraud"), online_backend.open("ads")
    fraud_data = fill(fraud, TABLES, base=0)
    ads_data = fill(ads, TABLES, base=5000)
    assert contents(fraud, TABLES) == fraud_data
    assert contents(ads, TABLES) == ads_data
    fraud.drop("t")
    assert contents(ads, TABLES) == ads_data
    assert contents(fraud, TABLES) == {k: val for k, val in fraud_data.items() if k[0] != "t"}


def test_project_names_that_prefix_each_other(online_backend: Backend) -> None:
    a, ab = online_backend.open("a"), online_backend.open("a_b")
    a.write("b_t", [b"k"], [v(1)])
    ab.write("t", [b"k"], [v(2)])
    assert a.read("b_t", [b"k"]) == [v(1)]
    assert ab.read("t", [b"k"]) == [v(2)]
    assert a.read("t", [b"k"]) == [None]
    assert ab.read("b_t", [b"k"]) == [None]
