"""Time as Strato accepts it: whole microseconds in UTC, and never far ahead of the clock.

Every instant that reaches storage passes here or follows these rules (`frames` applies them
to whole columns):

* **Whole microseconds.** History, DuckDB and the online header all hold µs. A time with a
  sub-microsecond part (a pandas ``ns`` timestamp ending in ``...001``) is refused, never
  rounded: rounding would silently merge two distinct events into one row identity.
* **Not beyond now + an allowance.** A row stamped 9999-12-31 would win rule 4 against every
  later write of its key forever, never expire, and stop incremental materialization. Event
  times later than `max_future_event` are refused; the allowance covers clock skew between
  producers and this machine. It is the one setting both writes and materialization read
  (``write.max_future_seconds`` in strato.yaml, default `DEFAULT_MAX_FUTURE_SECONDS`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final

from strato.errors import UserError

DEFAULT_MAX_FUTURE_SECONDS: Final = 300.0
"""How far past this machine's clock an event time may lie: 5 minutes of producer clock skew."""

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    """This machine's wall clock, in µs since the epoch."""
    return time.time_ns() // 1000


def max_future_event(now: datetime | None = None, *, allowance_seconds: float = DEFAULT_MAX_FUTURE_SECONDS) -> datetime:
    """The latest event time accepted at `now` (default: the current time): now + the allowance."""
    moment = datetime.now(UTC) if now is None else to_utc(now, "now")
    return moment + timedelta(seconds=allowance_seconds)


def max_future_event_us(*, allowance_seconds: float = DEFAULT_MAX_FUTURE_SECONDS) -> int:
    """`max_future_event` at the current time, in µs since the epoch (for whole columns)."""
    return now_us() + int(allowance_seconds * 1_000_000)


def check_not_future(moment: datetime, what: str, *, allowance_seconds: float = DEFAULT_MAX_FUTURE_SECONDS) -> None:
    """Refuse `moment` if it lies beyond `max_future_event` (a `UserError` naming `what`)."""
    limit = max_future_event(allowance_seconds=allowance_seconds)
    if to_utc(moment, what) > limit:
        raise UserError(
            f"{what} {to_utc(moment, what).isoformat()} is in the future (later than now + "
            f"{allowance_seconds:g} s, {limit.isoformat(timespec='seconds')}); "
            "set write.max_future_seconds in strato.yaml to allow more"
        )


def to_utc(moment: object, what: str) -> datetime:
    """`moment` as an aware UTC datetime; naive is taken as UTC; sub-µs precision is refused.

    A `pandas.Timestamp` is a datetime that may carry nanoseconds, which `datetime` arithmetic
    would drop silently.
    """
    if not isinstance(moment, datetime):
        raise UserError(f"{what}: expected a datetime, got {moment!r:.80}")
    nanos = getattr(moment, "nanosecond", 0)
    if nanos:
        raise UserError(
            f"{what}: {moment} has {nanos} ns past the microsecond; Strato keeps whole microseconds "
            "(floor it first, e.g. ts.floor('us'))"
        )
    to_plain = getattr(moment, "to_pydatetime", None)  # a pandas.Timestamp: a plain datetime from here on
    if type(moment) is not datetime and callable(to_plain):
        moment = to_plain()
        assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_us(micros: int) -> str:
    """µs since the epoch as ISO 8601 text in UTC, for messages."""
    try:
        return (EPOCH + timedelta(microseconds=micros)).isoformat()
    except OverflowError:  # beyond datetime's years 1-9999
        return f"{micros} µs since the epoch"
