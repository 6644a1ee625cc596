"""`strato backfill` through the installed script: a view computed by a SqlSource query over
a Parquet file and another view, added to the example repo `strato init` writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from e2e.conftest import one_line_error, run

T0 = (datetime.now(UTC) - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
DAY = timedelta(days=1)

TRANSFORMED = '''

from strato import FileSource, SqlSource

daily_spend = FeatureView(
    "daily_spend",
    entities=[user],
    schema=[Field("spend", Float64), Field("payments", Int64), Field("home_country", String)],
    source=SqlSource(
        """
        SELECT p.user_id, date_trunc('day', p.ts) AS event_timestamp,
               sum(p.amount) AS spend, count(*) AS payments, any_value(s.home_country) AS home_country
        FROM raw_payments p LEFT JOIN (
            SELECT user_id, arg_max(home_country, event_timestamp) AS home_country FROM user_stats GROUP BY user_id
        ) s USING (user_id)
        GROUP BY ALL
        """,
        inputs=[FileSource("payments.parquet", name="raw_payments"), user_stats],
    ),
)
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("backfill")
    assert run("init", "shop", cwd=root).code == 0
    repo = root / "shop"
    with (repo / "features.py").open("a") as handle:
        handle.write(TRANSFORMED)
    times = [T0 + timedelta(hours=h) for h in range(0, 72, 6)]  # 3 days, 4 payments a day per user
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([u for _ in times for u in (1, 2)], pa.int64()),
                "ts": pa.array([t for t in times for _ in (1, 2)], pa.timestamp("us", tz="UTC")),
                "amount": pa.array([float(i) for i in range(2 * len(times))], pa.float64()),
            }
        ),
        repo / "payments.parquet",
    )
    done = run("apply", cwd=repo)
    assert done.code == 0, str(done)
    for i, country in enumerate(("FR", "DE")):  # two profiles per user: the query takes the latest
        stats = root / f"stats{i}.parquet"
        pq.write_table(
            pa.table(
                {
                    "user_id": pa.array([1, 2], pa.int64()),
                    "event_timestamp": pa.array([T0 - DAY + i * timedelta(hours=1)] * 2, pa.timestamp("us", tz="UTC")),
                    "tx_count_7d": pa.array([1, 2], pa.int64()),
                    "amount_mean_7d": pa.array([1.0, 2.0], pa.float64()),
                    "home_country": pa.array([country] * 2),
                }
            ),
            stats,
        )
        written = run("write", "user_stats", stats, cwd=repo)
        assert written.code == 0, str(written)
    return repo


def test_backfill_has_help(repo: Path) -> None:
    result = run("backfill", "--help", cwd=repo)
    assert result.code == 0, str(result)
    for word in ("Usage", "START", "END", "--step"):
        assert word in result.out, str(result)
    assert "strato backfill 2026-01-01 2026-02-01" in result.out  # the examples


def test_backfill_computes_once_and_then_only_gaps(repo: Path) -> None:
    planned = run("backfill", T0.isoformat(), (T0 + DAY).isoformat(), "--dry-run", cwd=repo)
    assert planned.code == 0, str(planned)
    assert "would compute" in planned.out, str(planned)
    assert f"[{T0.strftime('%Y-%m-%d')}, {(T0 + DAY).strftime('%Y-%m-%d')})" in planned.out, str(planned)
    first = run("backfill", T0.isoformat(), (T0 + DAY).isoformat(), cwd=repo)
    assert first.code == 0, str(first)
    assert "backfilled 2 rows" in first.out, str(first)
    again = run("backfill", T0.isoformat(), (T0 + DAY).isoformat(), "daily_spend", cwd=repo)
    assert again.code == 0, str(again)
    assert "nothing to do" in again.out, str(again)
    assert "backfilled 0 rows" in again.out, str(again)
    wider = run("backfill", T0.isoformat(), (T0 + 3 * DAY).isoformat(), "--step", "1d", cwd=repo)
    assert wider.code == 0, str(wider)
    assert "backfilled 4 rows" in wider.out, str(wider)
    day = T0.strftime("%Y-%m-%d")
    assert f"[{(T0 + DAY).strftime('%Y-%m-%d')}, {(T0 + 3 * DAY).strftime('%Y-%m-%d')})" in wider.out
    counted = run("sql", "select 1000 * count(*) + sum(payments) as x from daily_spend", cwd=repo)
    assert counted.code == 0, str(counted)
    assert "6024" in counted.out, str(counted)  # 2 users x 3 days, 4 payments each: no duplicates
    described = run("describe", "view", "daily_spend", cwd=repo)
    assert described.code == 0, str(described)
    assert "computed by SqlSource" in described.out, str(described)
    assert f"[{day}, " in described.out, str(described)
    online = run("get", "daily_spend:payments", "daily_spend:home_country", "-e", "user_id=1", "--json", cwd=repo)
    assert online.code == 0, str(online)
    answer = json.loads(online.out.splitlines()[0])["features"]
    assert answer["payments"] == 4, str(online)
    assert answer["home_country"] == "DE", str(online)  # the latest profile, joined without fanning out


def test_backfill_user_errors_are_one_line(repo: Path) -> None:
    assert "is not computed by a query" in one_line_error(
        run("backfill", T0.isoformat(), (T0 + DAY).isoformat(), "user_stats", cwd=repo)
    )
    assert "must be before end" in one_line_error(run("backfill", (T0 + DAY).isoformat(), T0.isoformat(), cwd=repo))
    assert "not an ISO 8601 time" in one_line_error(run("backfill", "yesterday", "now", cwd=repo))
    assert "--step" in one_line_error(run("backfill", T0.isoformat(), "now", "--step", "soon", cwd=repo))


def test_materialize_computes_transformed_views_up_to_its_end(repo: Path) -> None:
    first = run("backfill", T0.isoformat(), (T0 + DAY).isoformat(), "daily_spend", cwd=repo)
    assert first.code == 0, str(first)
    done = run("materialize", "--incremental", "--view", "daily_spend", cwd=repo)  # up to now
    assert done.code == 0, str(done)
    assert "computed daily_spend from its SqlSource" in done.out, str(done)
    described = run("describe", "view", "daily_spend", cwd=repo)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"[{T0.strftime('%Y-%m-%d')}, {today} " in described.out, str(described)  # one interval, up to now
