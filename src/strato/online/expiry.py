"""Design rule 4, decided in one place: PRESENT, EXPIRED or NOT_FOUND for each read value."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import numpy.typing as npt

from strato.types import ReadStatus

_PRESENT = np.int8(ReadStatus.PRESENT)
_NOT_FOUND = np.int8(ReadStatus.NOT_FOUND)
_EXPIRED = np.int8(ReadStatus.EXPIRED)


def statuses(
    found: npt.NDArray[np.bool_],
    event_ts_us: npt.NDArray[np.int64],
    ttl: timedelta | None,
    now_us: int,
) -> npt.NDArray[np.int8]:
    """Per value: NOT_FOUND if absent, EXPIRED if ``now - event_ts > ttl``, else PRESENT."""
    out = np.where(found, _PRESENT, _NOT_FOUND)
    if ttl is not None:
        ttl_us = ttl // timedelta(microseconds=1)
        out[found & (now_us - event_ts_us > ttl_us)] = _EXPIRED
    return out
