"""`$start`/`$end` in a Spark batch query: found outside strings, quoted names and comments,
and turned into timestamp literals (Spark SQL has no `$name` parameters). No Spark needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strato.errors import UserError
from strato.offline.engines.spark_batch import bind_parameters

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2024, 1, 2, tzinfo=UTC)


def test_parameters_become_literals_and_the_rest_is_untouched() -> None:
    text = "SELECT '$start', \"$x\", `$end`, 'it''s $soon' FROM t -- $soon\nWHERE a >= $start /* $end */ AND a < $end"
    got = bind_parameters(text, START, END)
    assert got == (
        "SELECT '$start', \"$x\", `$end`, 'it''s $soon' FROM t -- $soon\n"
        "WHERE a >= timestamp_micros(1704067200000000) /* $end */ AND a < timestamp_micros(1704153600000000)"
    )


def test_an_escaped_quote_does_not_end_a_string() -> None:
    assert bind_parameters(r"SELECT 'a\'$soon' AS s", None, None) == r"SELECT 'a\'$soon' AS s"


def test_unknown_and_unbounded_parameters_are_refused() -> None:
    with pytest.raises(UserError, match=r"parameter \$soon; the parameters it may use are \$start and \$end"):
        bind_parameters("SELECT $soon", START, END)
    with pytest.raises(UserError, match=r"uses \$end, which needs a bounded range"):
        bind_parameters("SELECT $end", START, None)
