"""On-demand views shared by the on-demand tests (a module, so their functions are importable)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from store.helpers import stats_view
from strato import Field, Float64, Int64, OnDemandFeatureView, RequestSource, String, on_demand_feature_view

STATS = stats_view("stats")
TXN = RequestSource("txn", schema=[Field("amount", Float64), Field("n", Int64)])


@on_demand_feature_view(
    sources=[STATS[["x", "score"]], TXN],
    schema=[Field("total", Float64), Field("ratio", Float64), Field("label", String)],
    mode="pandas",
)
def pandas_odfv(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["total"] = df["score"] + df["amount"]
    out["ratio"] = df["amount"] / df["x"].where(df["x"] != 0)
    out["label"] = df["user_id"].astype(str) + ":" + df["n"].astype(str)
    return out


@on_demand_feature_view(
    sources=[STATS[["x", "score"]], TXN],
    schema=[Field("total", Float64), Field("big", Int64)],
    mode="python",
)
def python_odfv(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        "total": [None if s is None else s + a for s, a in zip(inputs["score"], inputs["amount"], strict=True)],
        "big": [None if x is None else x * n for x, n in zip(inputs["x"], inputs["n"], strict=True)],
    }


@on_demand_feature_view(
    sources=[STATS[["x", "score"]], TXN], schema=[Field("total", Float64)], mode="python", singleton=True
)
def row_odfv(row: dict[str, Any]) -> dict[str, Any]:
    return {"total": None if row["score"] is None else row["score"] + row["amount"]}


def _arrow_total(table: pa.Table) -> pa.Table:
    return pa.table({"total": pc.add(table["score"], table["amount"])})


arrow_odfv = OnDemandFeatureView(
    "arrow_odfv", sources=[STATS[["score"]], TXN], schema=[Field("total", Float64)], udf=_arrow_total, mode="arrow"
)


@on_demand_feature_view(sources=[TXN], schema=[Field("doubled", Float64)], mode="python", singleton=True)
def request_only(row: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": row["amount"] * 2}


@on_demand_feature_view(sources=[STATS[["x"]], TXN], schema=[Field("q", Float64)], mode="python", singleton=True)
def divides(row: dict[str, Any]) -> dict[str, Any]:
    return {"q": row["amount"] / row["x"]}


@on_demand_feature_view(sources=[TXN], schema=[Field("q", Int64)], mode="python")
def wrong_type(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {"q": [str(a) for a in inputs["amount"]]}


@on_demand_feature_view(sources=[TXN], schema=[Field("q", Int64), Field("r", Int64)], mode="pandas")
def missing_column(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"q": df["n"]})


ALL = [STATS.entities[0], STATS, pandas_odfv, python_odfv, row_odfv, arrow_odfv, request_only, divides]
