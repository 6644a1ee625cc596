"""Rule 4 against a brute-force oracle: whatever order and batching writes arrive in, each key
ends with the value of greatest (event time, created time) — the last written among equals.

Streams, materializations and replays deliver rows in any order; the store must converge
to the same state. Each hypothesis example writes to a fresh table of one store, so the
function-scoped store fixture is safe to share across examples.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strato.online.base import OnlineStore

HEADER = struct.Struct("<qq")  # the codec's header layout, restated so the oracle shares no code with it
TABLES = itertools.count()

Item = tuple[bytes, int, int]  # key, event, created
items_strategy = st.lists(
    st.tuples(
        st.sampled_from([b"", b"a", b"b", b"\x00", b"ab", b"a\x00"]),
        st.integers(-3, 3),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=30,
)
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # a fresh table per example
)


def value(index: int, item: Item) -> bytes:
    """The value of item `index`: its header, then its index, so the oracle can tell which item won."""
    return HEADER.pack(item[1], item[2]) + index.to_bytes(4, "big")


def brute_force(items: Sequence[Item], written_order: Sequence[int]) -> dict[bytes, bytes]:
    """Per key, among its items with the greatest (event, created), the one written last."""
    final: dict[bytes, bytes] = {}
    for key in {item[0] for item in items}:
        mine = [i for i in written_order if items[i][0] == key]
        best = max((items[i][1], items[i][2]) for i in mine)
        winner = [i for i in mine if (items[i][1], items[i][2]) == best][-1]
        final[key] = value(winner, items[winner])
    return final


def write_in_batches(
    store: OnlineStore, table: str, items: Sequence[Item], order: Sequence[int], cuts: set[int]
) -> None:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(order)), len(order)]
    for start, end in itertools.pairwise(bounds):
        batch = order[start:end]
        store.write(table, [items[i][0] for i in batch], [value(i, items[i]) for i in batch])


@SETTINGS
@given(items=items_strategy, data=st.data())
def test_final_value_is_the_brute_force_winner(
    online_store: OnlineStore, items: list[Item], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(items))), label="write order")
    cuts = data.draw(st.sets(st.integers(0, len(items))), label="batch boundaries")
    table = f"shuffled_{next(TABLES)}"
    write_in_batches(online_store, table, items, order, cuts)

    expected = brute_force(items, order)
    keys = sorted(expected)
    assert online_store.read(table, keys) == [expected[k] for k in keys]


@SETTINGS
@given(items=items_strategy, data=st.data())
def test_order_does_not_matter_when_headers_are_distinct(
    online_store: OnlineStore, items: list[Item], data: st.DataObject
) -> None:
    # Keep one item per (key, header): then no tie is left for the write order to break.
    unique = list({(key, event, created): (key, event, created) for key, event, created in items}.values())
    finals = []
    for label in ("first", "second"):
        order = data.draw(st.permutations(range(len(unique))), label=f"{label} order")
        cuts = data.draw(st.sets(st.integers(0, len(unique))), label=f"{label} batches")
        table = f"order_{next(TABLES)}"
        write_in_batches(online_store, table, unique, order, cuts)
        keys = sorted({item[0] for item in unique})
        finals.append(online_store.read(table, keys))
    assert finals[0] == finals[1]
    assert None not in finals[0]
