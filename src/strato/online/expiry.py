"""Design rule 4, decided in one place: PRESENT, EXPIRED or NOT_FOUND for each read value."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import numpy.typing as npt

from strato.types import ReadStatus

_PRESENT = np.int8(ReadStatus.PRESENT)
_NOT_FOUND = np.int8(ReadStatus.NOT_FOUND)
_EXPIRED = np.int8(ReadStatus.EXPIRED)


def expired_before_us(ttl: timedelta | None, now_us: int) -> int | None:
    """The cut of rule 4: a value whose event time is before it is EXPIRED (None: no ttl).

    ``event_ts < now - ttl`` is ``now - event_ts > ttl``: a value exactly `ttl` old is fresh.
    Reads and `OnlineStore.prune` both use this cut, so they can never disagree.
    """
    return None if ttl is None else now_us - ttl // timedelta(microseconds=1)


def statuses(
    found: npt.NDArray[np.bool_],
    event_ts_us: npt.NDArray[np.int64],
    ttl: timedelta | None,
    now_us: int,
) -> npt.NDArray[np.int8]:
    """Per value: NOT_FOUND if absent, EXPIRED if ``now - event_ts > ttl``, else PRESENT."""
    out = np.where(found, _PRESENT, _NOT_FOUND)
    cut = expired_before_us(ttl, now_us)
    if cut is not None:
        out[found & (event_ts_us < cut)] = _EXPIRED
    return out
