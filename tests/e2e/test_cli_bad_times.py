"""`strato write` of files with times Strato refuses (issue 7 items 8, 12 and 14): one line
naming the column and row, exit 1, nothing written. Before, a nanosecond time printed a
pyarrow traceback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from e2e.conftest import one_line_error, run

EVENT = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
COLUMNS = "user_id,event_timestamp,tx_count_7d,amount_mean_7d,home_country"


def test_bad_times_in_files_are_one_line_naming_the_row(tmp_path: Path) -> None:
    assert run("init", "shop", cwd=tmp_path).code == 0
    repo = tmp_path / "shop"
    assert run("apply", cwd=repo).code == 0
    times = pd.DatetimeIndex([EVENT, pd.Timestamp(1_700_000_000_000_000_001, tz="UTC")])
    frame = pd.DataFrame(
        {"user_id": [1, 2], "event_timestamp": times, "tx_count_7d": [1, 2], "amount_mean_7d": [1.0, 2.0]}
    )
    frame["home_country"] = ["FR", "DE"]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), repo / "ns.parquet")
    (repo / "mixed.csv").write_text(
        f"{COLUMNS}\n1,2024-01-01T00:00:00,1,1.0,FR\n2,2024-01-01T00:00:00+02:00,1,1.0,FR\n"
    )
    (repo / "future.csv").write_text(f"{COLUMNS}\n1,{EVENT.isoformat()},1,1.0,FR\n2,9999-12-31T00:00:00Z,1,1.0,FR\n")
    expected = {
        "ns.parquet": "'event_timestamp', row 1: 2023-11-14",
        "mixed.csv": "'event_timestamp', row 1: '2024-01-01T00:00:00+02:00' has a UTC offset but row 0 lacks one",
        "future.csv": "'event_timestamp', row 1: event time 9999-12-31T00:00:00+00:00 is in the future",
    }
    for name, text in expected.items():
        line = one_line_error(run("write", "user_stats", name, cwd=repo))
        assert text in line, line
    count = run("sql", "select count(*) as n from user_stats", cwd=repo)
    assert count.code == 0, str(count)
    assert re.search(r"│\s*0\s*│", count.out), count.out
