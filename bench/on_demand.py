"""What an on-demand feature view adds to an online read: 1 entity x a 120-feature view, with
and without a small on-demand view, on LMDB.

The on-demand view reads two of the view's features and one request field and returns one
float64. Each mode is measured: ``python`` with ``singleton=True`` (a dict per row), ``python``
(dicts of lists), ``arrow`` and ``pandas``. Baseline: the same `get_online_features(120 refs,
[one entity]).to_dict()` without it, in alternating rounds of every case (GC off while timing).

Run: ``uv run python -m bench.on_demand --iterations 5000``. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bench.run import _percentiles, _time_calls
from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, OnDemandFeatureView, RequestSource
from strato.config import write_default_config

WIDTH = 120
USER = Entity("user", join_keys={"user_id": Int64})
WIDE = FeatureView("wide", entities=[USER], schema=[Field(f"f{i}", Float64) for i in range(WIDTH)])
TXN = RequestSource("txn", schema=[Field("amount", Float64)])


def row_mode(row: dict[str, Any]) -> dict[str, Any]:
    return {"score": row["f0"] * row["amount"] + row["f1"]}


def list_mode(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {"score": [a * b + c for a, b, c in zip(inputs["f0"], inputs["amount"], inputs["f1"], strict=True)]}


def arrow_mode(table: pa.Table) -> pa.Table:
    return pa.table({"score": pc.add(pc.multiply(table["f0"], table["amount"]), table["f1"])})


def pandas_mode(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"score": df["f0"] * df["amount"] + df["f1"]})


MODES = {
    "python_singleton": (row_mode, "python", True),
    "python": (list_mode, "python", False),
    "arrow": (arrow_mode, "arrow", False),
    "pandas": (pandas_mode, "pandas", False),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    odfvs = [
        OnDemandFeatureView(
            f"odfv_{name}",
            sources=[WIDE[["f0", "f1"]], TXN],
            schema=[Field("score", Float64)],
            udf=fn,
            mode=mode,
            singleton=single,
        )
        for name, (fn, mode, single) in MODES.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        write_default_config(repo, "bench")
        with FeatureStore(repo) as store:
            store.apply([USER, WIDE, *odfvs])
            rng = np.random.default_rng(7)
            data = {"user_id": np.arange(args.users), "event_timestamp": [datetime.now(UTC)] * args.users}
            data |= {f"f{i}": rng.random(args.users) for i in range(WIDTH)}
            store.write("wide", pa.table(data))
            refs = [f"wide:f{i}" for i in range(WIDTH)]
            users = rng.integers(0, args.users, args.iterations * args.rounds * (len(MODES) + 1)).tolist()
            cases: dict[str, tuple[list[str], bool]] = {"without": (refs, False)}
            cases |= {name: ([*refs, f"odfv_{name}:score"], True) for name in MODES}
            samples: dict[str, list[int]] = {name: [] for name in cases}

            def call(name: str) -> Any:
                wanted, with_request = cases[name]

                def one(i: int) -> None:
                    row = {"user_id": users[i], "amount": 2.0} if with_request else {"user_id": users[i]}
                    store.get_online_features(wanted, [row]).to_dict()

                return one

            for name in cases:  # warm up: plans, functions, caches
                _time_calls(call(name), 200)
            at = 0
            for _ in range(args.rounds):
                for name in cases:
                    samples[name] += _time_calls(call(name), args.iterations, at)
                    at += args.iterations
    out: dict[str, float] = {}
    base_p50, base_p99 = _percentiles(samples["without"])
    out["online_1x120_to_dict_p50_us"], out["online_1x120_to_dict_p99_us"] = base_p50, base_p99
    for name in MODES:
        p50, p99 = _percentiles(samples[name])
        out[f"odfv_{name}_1x120_p50_us"], out[f"odfv_{name}_1x120_p99_us"] = p50, p99
        out[f"odfv_{name}_added_p50_us"] = round(p50 - base_p50, 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
