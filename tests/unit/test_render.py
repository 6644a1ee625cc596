"""`cli.render`: ttl, counts, rates and times as a person writes them; no wrapping in a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from strato.cli.render import MIN_RATE_ROWS, MIN_RATE_SECONDS, count, duration, number, rate, seconds


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


@pytest.mark.parametrize(
    ("n", "noun", "text"), [(0, "row", "0 rows"), (1, "row", "1 row"), (2, "online key", "2 online keys")]
)
def test_count(n: int, noun: str, text: str) -> None:
    assert count(n, noun) == text
    assert count(1_234_567, "row") == "1,234,567 rows"


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0, "0"),
        (950, "950"),
        (9_999, "9,999"),
        (999_999, "1.00M"),
        (12_345, "12.3K"),
        (123_456, "123K"),
        (1_234_567, "1.23M"),
        (4.56e9, "4.56B"),
    ],
)
def test_number_is_three_digits_for_a_person(x: float, text: str) -> None:
    assert number(x) == text


@pytest.mark.parametrize(
    ("value", "text"), [(0.0421, "0.04 s"), (9.999, "10.00 s"), (12.34, "12.3 s"), (125.2, "2m 05s")]
)
def test_seconds(value: float, text: str) -> None:
    assert seconds(value) == text


def test_no_rate_for_a_tiny_or_instant_write() -> None:
    """The report: a 2-row write said "(2 rows/s)"."""
    assert rate(2, 0.004) is None
    assert rate(2, 3.4) is None  # slow, but two rows measure the fixed costs, not throughput
    assert rate(MIN_RATE_ROWS - 1, 10.0) is None
    assert rate(1_000_000, MIN_RATE_SECONDS - 1e-6) is None
    assert rate(1_000_000, 0.8) == "1.25M rows/s"
    assert rate(6_000, 2.0, "keys") == "3,000 keys/s"


def test_in_a_pipe_nothing_wraps() -> None:
    """The report: piped output wrapped at 80 columns, mid-word. Not a TTY → a width nothing reaches."""
    code = (
        "from strato.cli import render\n"
        "render.table(None, ['name', 'description'], [('x', 'word' * 60 + ' ' + 'long ' * 40)])\n"
        "render.console.print('a ' * 100)\n"
        "render.rule('step')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    lines = done.stdout.splitlines()
    assert any(("word" * 60 + " " + "long " * 40).strip() in line for line in lines), done.stdout
    assert ("a " * 100).strip() in done.stdout
    rule = lines[-1]
    assert "step" in rule
    assert len(rule) <= 80  # a section rule stays short in a pipe
