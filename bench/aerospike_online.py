"""Strato's online lookups on Aerospike beside a raw client reading the same packed records.

``uv run python -m bench.aerospike_online`` starts the test server bundle (``shared/engines/aerospike``
above the repo, or ``STRATO_AEROSPIKE_BUNDLE``) on loopback, writes one 120-feature view
(118 numbers cycling float32 / float64 / int64, a string and a list: one packed record per
user) for 20,000 users through `FeatureStore.write`, then times, alternating rounds:

- ``aerospike_1x120``: `get_online_features` of 120 features for one user (the lookup, as
  ``online_1x120_lookup`` in `bench.run`), and ``aerospike_1x120_to_dict`` with ``.to_dict()``,
  beside ``aerospike_raw_get``: the client's ``select`` of the same record's value bin;
- ``aerospike_100x120`` and ``aerospike_100x120_to_dict``: the same for 100 users, beside
  ``aerospike_raw_batch_100``: the client's ``batch_read`` of the same 100 records.

Prints one flat JSON object; ``--merge`` also adds it to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aerospike
import numpy as np
import pyarrow as pa

from bench.run import RESULTS, _percentiles, _time_calls
from strato import Entity, FeatureStore, FeatureView, Field, Float32, Float64, Int64, List, String
from strato.online.backends.aerospike import set_name, user_key

CYCLE = (Float32, Float64, Int64)
NUMERIC = 118


def _bundle() -> Path:
    configured = os.environ.get("STRATO_AEROSPIKE_BUNDLE")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "engines" / "aerospike"
        if (candidate / "start-aerospike").is_file():
            return candidate
    raise SystemExit("no Aerospike server bundle found (set STRATO_AEROSPIKE_BUNDLE)")


def _view() -> tuple[Entity, FeatureView]:
    user = Entity("user", join_keys={"user_id": Int64})
    schema = [Field(f"f{i}", CYCLE[i % 3]) for i in range(NUMERIC)]
    schema += [Field("country", String), Field("recent", List(Int64))]
    return user, FeatureView("wide", entities=[user], schema=schema)


def _rows(users: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    columns: dict[str, Any] = {
        "user_id": pa.array(np.arange(users, dtype=np.int64)),
        "event_timestamp": pa.array([now - timedelta(minutes=int(m)) for m in rng.integers(0, 600, users)]),
    }
    for i, values in enumerate(rng.random((NUMERIC, users))):
        kind = CYCLE[i % 3]
        if kind == Int64:
            columns[f"f{i}"] = pa.array((values * 1e6).astype(np.int64))
        else:
            columns[f"f{i}"] = pa.array(values.astype(np.float32 if kind == Float32 else np.float64))
    columns["country"] = pa.array(rng.choice(["DE", "FR", "US", "JP"], users))
    offsets = pa.array(np.arange(0, 3 * users + 1, 3, dtype=np.int32))
    columns["recent"] = pa.ListArray.from_arrays(offsets, pa.array(rng.integers(0, 1000, 3 * users)))
    return pa.table(columns)


def run(users: int, iterations: int, seed: int = 7) -> dict[str, Any]:
    bundle = _bundle()
    with tempfile.TemporaryDirectory(prefix="strato-bench-aerospike-") as tmp:
        server_dir = Path(tmp) / "server"
        address = subprocess.run(
            [str(bundle / "start-aerospike"), str(server_dir)], capture_output=True, text=True, check=True, timeout=90
        ).stdout.strip()
        try:
            repo = Path(tmp) / "repo"
            repo.mkdir()
            (repo / "strato.yaml").write_text(
                f"project: bench\nonline:\n  type: aerospike\n  hosts: ['{address}']\n  namespace: test\n"
            )
            user, view = _view()
            with FeatureStore(repo) as store:
                store.apply([user, view])
                store.write("wide", _rows(users, seed))
                return _measure(store, address, view, users, iterations, seed)
        finally:
            subprocess.run([str(bundle / "stop-aerospike"), str(server_dir)], check=False, timeout=60)


def _measure(
    store: FeatureStore, address: str, view: FeatureView, users: int, iterations: int, seed: int
) -> dict[str, Any]:
    refs = [f"wide:{f.name}" for f in view.schema]
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, users, iterations * 100).tolist()
    host, port = address.rsplit(":", 1)
    client = aerospike.client({"hosts": [(host, int(port))]}).connect()
    set_ = set_name("", "bench", store.get_feature_view("wide").table_name)
    keys = [("test", set_, user_key(int(i).to_bytes(8, "big", signed=True))) for i in ids]
    rows1 = [[{"user_id": u}] for u in ids[:iterations]]
    rows100 = [[{"user_id": u} for u in ids[i * 100 : (i + 1) * 100]] for i in range(iterations // 10)]
    get = store.get_online_features
    width = len(get(refs, rows1[0]).to_dict()) - 1
    if width != 120:
        raise RuntimeError(f"expected 120 features, got {width}")

    def raw_get(i: int) -> None:
        client.select(keys[i], ("v",))

    def raw_batch(i: int) -> None:
        client.batch_read(keys[i * 100 : (i + 1) * 100], ["v"])

    cases: dict[str, tuple[Callable[[int], object], int]] = {
        "aerospike_raw_get": (raw_get, iterations),
        "aerospike_1x120": (lambda i: get(refs, rows1[i]), iterations),
        "aerospike_1x120_to_dict": (lambda i: get(refs, rows1[i]).to_dict(), iterations),
        "aerospike_raw_batch_100": (raw_batch, iterations // 10),
        "aerospike_100x120": (lambda i: get(refs, rows100[i]), iterations // 10),
        "aerospike_100x120_to_dict": (lambda i: get(refs, rows100[i]).to_dict(), iterations // 10),
    }
    for call, _ in cases.values():  # warm every path
        _time_calls(call, 200)
    print(f"aerospike: {iterations:,} single lookups and {iterations // 10:,} batches of 100 …", file=sys.stderr)
    samples: dict[str, list[int]] = {name: [] for name in cases}
    rounds = 5
    for r in range(rounds):
        for name, (call, n) in cases.items():
            per = n // rounds
            samples[name] += _time_calls(call, per, r * per)
    client.close()
    out: dict[str, Any] = {}
    for name in cases:
        p50, p99 = _percentiles(samples[name])
        out[f"{name}_p50_us"] = p50
        out[f"{name}_p99_us"] = p99
    for name, raw in (("aerospike_1x120", "aerospike_raw_get"), ("aerospike_100x120", "aerospike_raw_batch_100")):
        for case in (name, f"{name}_to_dict"):
            out[f"{case}_p99_ratio"] = round(out[f"{case}_p99_us"] / out[f"{raw}_p99_us"], 2)
    out["aerospike_iterations"] = iterations
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Strato on Aerospike beside the raw client.")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--iterations", type=int, default=10_000, help="single-entity lookups to time")
    parser.add_argument("--merge", action="store_true", help="also add the figures to bench/results.json")
    args = parser.parse_args(argv)
    results = run(args.users, args.iterations)
    if args.merge:
        merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        merged.update(results)
        RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
