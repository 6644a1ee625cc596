"""Engine limits a write must meet online, checked before anything is written anywhere.

A batch that history accepts but the online store refuses would leave the two stores out of
step: so key lengths and room are checked while the batch is validated, before the Delta
commit, and an over-long key is reported by its row like any other bad value.
"""

from __future__ import annotations

import reprlib

import numpy as np
import pyarrow as pa

from strato.definitions.feature_view import FeatureView
from strato.errors import SchemaError
from strato.online.base import OnlineStore
from strato.online.codec import HEADER_SIZE, ViewCodec


def check_online_limits(store: OnlineStore, fv: FeatureView, codec: ViewCodec, rows: pa.Table) -> None:
    """Refuse `rows` (validated) if the online store could not take them; nothing is written."""
    if rows.num_rows == 0:
        return
    key_columns = [rows.column(name) for name in codec.keys.names]
    lengths = codec.keys.lengths(key_columns)
    limit = store.key_limit(fv.table_name)
    if limit is not None:
        too_long = np.flatnonzero(lengths > limit)
        if too_long.size:
            row = int(too_long[0])
            keys = {name: rows.column(name)[row].as_py() for name in codec.keys.names}
            shown = {k: reprlib.repr(v) for k, v in keys.items()}
            raise SchemaError(
                f"row {row}: join key {shown} is {int(lengths[row])} bytes encoded; the {store.name} online store "
                f"holds at most {limit} for {fv.name!r} ({too_long.size:,} row(s) too long); nothing was written"
            )
    store.check_room(fv.table_name, int(lengths.sum()) + rows.nbytes + rows.num_rows * HEADER_SIZE)
