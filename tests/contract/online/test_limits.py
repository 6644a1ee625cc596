"""Engine limits a backend declares (`key_limit`, `check_room`) are the limits it enforces.

The core checks them before committing history, so a backend that declared a longer key
than it stores, or room it does not have, would split a write between the two stores.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.definitions.field import Field
from strato.online.base import OnlineStore
from strato.online.codec import HEADER, KeyCodec
from strato.types import Int64, String

TABLE = "keys__v1"
VALUE = HEADER.pack(1, 1)


def test_a_key_of_the_declared_limit_is_stored_and_read_back(online_store: OnlineStore) -> None:
    limit = online_store.key_limit(TABLE)
    if limit is None:
        pytest.skip(f"{online_store.name} declares no key limit")
    longest = b"k" * limit
    assert online_store.write(TABLE, [longest], [VALUE]) == 1
    assert online_store.read(TABLE, [longest]) == [VALUE]


def test_a_key_past_the_declared_limit_is_refused_whole(online_store: OnlineStore) -> None:
    limit = online_store.key_limit(TABLE)
    if limit is None:
        pytest.skip(f"{online_store.name} declares no key limit")
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal; the core never sends such a key
        online_store.write(TABLE, [b"ok", b"k" * (limit + 1)], [VALUE, VALUE])
    assert online_store.read(TABLE, [b"ok"]) == [None]


def test_room_for_a_small_write_is_granted(online_store: OnlineStore) -> None:
    online_store.check_room(TABLE, 1_000)


def test_key_lengths_match_the_encoded_keys() -> None:
    """`KeyCodec.lengths` (checked before writing) equals the length of what `encode_columns` builds."""
    for join_keys in ({"id": Int64}, {"name": String}, {"id": Int64, "name": String}):
        view = FeatureView("v", entities=[Entity("e", join_keys=join_keys)], schema=[Field("x", Int64)])
        codec = KeyCodec(view.join_keys)
        columns = {
            "id": pa.array([1, -5, 2**62], pa.int64()),
            "name": pa.array(["", "é" * 30, "plain"], pa.string()),
        }
        picked = [columns[name] for name in codec.names]
        assert list(codec.lengths(picked)) == [len(k) for k in codec.encode_columns(picked)]
