"""Data quality through the `strato` script: a refused file says why in one line and writes
nothing; a quarantining view writes the good rows, lists the others with `strato quarantine`
(or writes them to a file), and `strato describe` shows the last write's statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.parquet as pq
import pytest

from e2e.conftest import one_line_error, run

EVENT = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
FEATURES = """
from strato import Entity, Expect, FeatureView, Field, Float64, Int64, String

user = Entity("user", join_keys={"user_id": Int64})
payments = FeatureView(
    "payments",
    entities=[user],
    schema=[
        Field("amount", Float64, expect=Expect(ge=0, le=10_000)),
        Field("country", String, expect=Expect(allowed=["FR", "DE"])),
    ],
    on_invalid="{on_invalid}",
)
"""


def _repo(tmp_path: Path, on_invalid: str) -> Path:
    assert run("init", "shop", cwd=tmp_path).code == 0
    repo = tmp_path / "shop"
    (repo / "features.py").write_text(FEATURES.replace("{on_invalid}", on_invalid))
    applied = run("apply", cwd=repo)
    assert applied.code == 0, str(applied)
    return repo


def _file(repo: Path) -> Path:
    path = repo / "payments.parquet"
    table = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4], pa.int64()),
            "event_timestamp": pa.array([EVENT] * 4, pa.timestamp("us", tz="UTC")),
            "amount": [10.0, -5.0, 20.0, 30.0],
            "country": ["FR", "FR", "XX", "DE"],
        }
    )
    pq.write_table(table, path)
    return path


def test_a_refused_file_says_why_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "reject")
    line = one_line_error(run("write", "payments", _file(repo), cwd=repo))
    assert "feature view 'payments': batch refused, nothing written" in line
    assert "field 'amount' breaks ge=0 le=10000: 1 of 4 rows, e.g. row 1 (amount=-5.0)" in line
    assert "field 'country' breaks allowed=['FR', 'DE']: 1 of 4 rows, e.g. row 2 (country='XX')" in line
    described = run("describe", "view", "payments", cwd=repo)
    assert "no rows yet" in described.out, str(described)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_quarantined_rows_are_listed_and_exported(tmp_path: Path, suffix: str) -> None:
    repo = _repo(tmp_path, "quarantine")
    wrote = run("write", "payments", _file(repo), cwd=repo)
    assert wrote.code == 0, str(wrote)
    assert "wrote 2 rows" in wrote.out
    assert "set aside 2 rows" in wrote.out
    listed = run("quarantine", "payments", cwd=repo)
    assert listed.code == 0, str(listed)
    assert "payments: 2 rows set aside" in listed.out
    assert "amount: ge=0 le=10000" in listed.out
    assert "country: allowed=['FR', 'DE']" in listed.out
    out = repo / f"aside{suffix}"
    exported = run("quarantine", "payments", "--out", out, cwd=repo)
    assert exported.code == 0, str(exported)
    rows = (csv.read_csv(out) if suffix == ".csv" else pq.read_table(out)).to_pylist()
    assert sorted(r["user_id"] for r in rows) == [2, 3]
    described = run("describe", "view", "payments", cwd=repo)
    assert described.code == 0, str(described)
    assert "2 rows, 2 set aside" in described.out
    assert "amount" in described.out
    assert "20" in described.out  # the mean of the two written amounts (10 and 30)


def test_quarantine_of_a_clean_view_and_a_bad_out_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "quarantine")
    assert "no rows of 'payments' were set aside" in run("quarantine", "payments", cwd=repo).out
    line = one_line_error(run("quarantine", "payments", "--out", repo / "x.json", cwd=repo))
    assert "give a .csv or .parquet file name" in line
