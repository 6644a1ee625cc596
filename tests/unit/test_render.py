"""`cli.render.duration`: ttl as a person writes it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strato.cli.render import duration


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (timedelta(0), "0s"),
        (timedelta(days=7), "7d"),
        (timedelta(hours=36), "1d 12h"),
        (timedelta(days=1, hours=2, minutes=30), "1d 2h 30m"),
        (timedelta(seconds=90), "1m 30s"),
    ],
)
def test_duration(value: timedelta | None, text: str) -> None:
    assert duration(value) == text
