"""Online reads on Redis and Redis Cluster, each beside a raw redis-py read of the same keys.

Starts its own `redis-server` (and a 3-master cluster) on free loopback ports in a temporary
directory, stops them by PID at the end, and skips (returns no figures) where `redis-server`
is not installed. Data: `users` users of `bench.run`'s two views (100 + 20 numeric features),
one version each, written through `FeatureStore.write`.

- ``redis_1x120_p99_us``: `get_online_features(120 refs, [one entity]).to_dict()` on Redis,
  beside ``redis_raw_p99_us``: one raw ``MGET`` of the same two keys (bytes only; the least
  any client can do) and ``redis_raw_2get_p99_us``: two ``GET``s, what the backend sends
  (one read per view);
- ``redis_cluster_100x120_p99_us``: the same for 100 entities on the cluster, beside
  ``redis_cluster_raw_100_p99_us``: redis-py's ``mget_nonatomic`` of the same 200 keys.

Run alone: ``uv run python -m bench.redis_online --users 20000 --iterations 5000``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import redis
import redis.cluster

from bench.run import _percentiles, _time_calls
from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64
from strato.config import write_default_config

VIEWS = {"view_a": 100, "view_b": 20}


def _port(bus: bool = False) -> int:
    while True:
        port = random.randrange(20_000, 30_000)
        try:
            for p in (port, port + 10_000) if bus else (port,):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


def _start(binary: str, directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    where = ("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory))
    process = subprocess.Popen(
        [binary, *where, "--save", "", "--appendonly", "no", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with suppress(redis.RedisError):
            if redis.Redis(port=port).ping():
                return process
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError(f"redis-server on port {port} did not start")


@contextmanager
def _servers(tmp: Path) -> Iterator[tuple[str, str] | None]:
    """(standalone url, cluster url), or None without redis-server; every process stopped by PID after."""
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if binary is None or cli is None:
        yield None
        return
    processes: list[subprocess.Popen[bytes]] = []
    try:
        port = _port()
        processes.append(_start(binary, tmp / "single", port))
        ports = [_port(bus=True) for _ in range(3)]
        for p in ports:
            processes.append(_start(binary, tmp / f"node{p}", p, "--cluster-enabled", "yes"))
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while any(redis.Redis(port=p).cluster("info").get("cluster_state") != "ok" for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark's Redis cluster did not become ready")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{ports[0]}"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _definitions() -> list[Any]:
    user = Entity("user", join_keys={"user_id": Int64})
    views = [
        FeatureView(name, entities=[user], schema=[Field(f"{name[-1]}{i}", Float64) for i in range(n)])
        for name, n in VIEWS.items()
    ]
    return [user, *views]


def _fill(store: FeatureStore, users: int) -> None:
    rng = np.random.default_rng(7)
    now = datetime.now(UTC) - timedelta(minutes=1)
    for name, n in VIEWS.items():
        columns: dict[str, Any] = {
            "user_id": pa.array(np.arange(users), pa.int64()),
            "event_timestamp": pa.array([now] * users, pa.timestamp("us", tz="UTC")),
        }
        for i in range(n):
            columns[f"{name[-1]}{i}"] = pa.array(rng.random(users))
        store.write(name, pa.table(columns))


def _measure(cases: dict[str, tuple[Callable[[int], object], int]]) -> dict[str, Any]:
    samples: dict[str, list[int]] = {name: [] for name in cases}
    rounds = 5
    for r in range(rounds):  # alternate, so noise lands on every case alike
        for name, (call, n) in cases.items():
            per = n // rounds
            samples[name] += _time_calls(call, per, r * per)
    out: dict[str, Any] = {}
    for name in cases:
        p50, p99 = _percentiles(samples[name])
        out[f"{name}_p50_us"], out[f"{name}_p99_us"] = p50, p99
    return out


def _bench(repo: Path, url: str, kind: str, users: int, iterations: int) -> dict[str, Any]:
    refs = [f"{view}:{view[-1]}{i}" for view, n in VIEWS.items() for i in range(n)]
    rng = random.Random(7)
    ids = [rng.randrange(users) for _ in range(iterations * 100)]
    rows1 = [[{"user_id": u}] for u in ids[:iterations]]
    rows100 = [[{"user_id": u} for u in ids[i * 100 : (i + 1) * 100]] for i in range(iterations // 10)]
    with FeatureStore(repo, online__type=kind, online__url=url, online__key_prefix=f"{kind}:") as store:
        store.apply(_definitions())
        _fill(store, users)
        online = store.online_store
        prefixes = [online._prefix(store.get_feature_view(v).table_name) for v in VIEWS]  # type: ignore[attr-defined]
        get = store.get_online_features
        for i in range(1000):
            get(refs, rows1[i]).to_dict()
        if len(get(refs, rows1[0]).to_dict()) != 121:
            raise RuntimeError("expected 120 features and the join key")
        if kind == "redis":
            client = redis.Redis.from_url(url)

            def key(prefix: bytes, user: int) -> bytes:
                return prefix + user.to_bytes(8, "big", signed=True)

            def raw_mget(i: int) -> None:
                if None in client.mget([key(p, ids[i]) for p in prefixes]):
                    raise RuntimeError("raw baseline missed a key")

            def raw_2get(i: int) -> None:
                for p in prefixes:
                    client.get(key(p, ids[i]))

            cases = {
                "redis_raw": (raw_mget, iterations),
                "redis_raw_2get": (raw_2get, iterations),
                "redis_1x120": (lambda i: get(refs, rows1[i]).to_dict(), iterations),
            }
            out = _measure(cases)
            out["redis_1x120_p99_ratio"] = round(out["redis_1x120_p99_us"] / out["redis_raw_p99_us"], 2)
        else:
            cluster = redis.cluster.RedisCluster.from_url(url)

            def raw_100(i: int) -> None:
                users_i = ids[i * 100 : (i + 1) * 100]
                cluster.mget_nonatomic(
                    [p + b"{" + u.to_bytes(8, "big", signed=True) + b"}" for p in prefixes for u in users_i]
                )

            cases = {
                "redis_cluster_raw_100": (raw_100, iterations // 10),
                "redis_cluster_100x120": (lambda i: get(refs, rows100[i]).to_dict(), iterations // 10),
            }
            out = _measure(cases)
            out["redis_cluster_100x120_p99_ratio"] = round(
                out["redis_cluster_100x120_p99_us"] / out["redis_cluster_raw_100_p99_us"], 2
            )
            cluster.close()
    return out


def run(users: int = 20_000, iterations: int = 5_000) -> dict[str, Any]:
    """The Redis figures, or an empty dict (with a note on stderr) without redis-server."""
    with tempfile.TemporaryDirectory(prefix="strato-bench-redis-") as tmp, _servers(Path(tmp)) as urls:
        if urls is None:
            print("redis: redis-server not installed, Redis figures skipped", flush=True)
            return {}
        results: dict[str, Any] = {"redis_users": users}
        for kind, url in zip(("redis", "redis_cluster"), urls, strict=True):
            repo = Path(tmp) / kind
            repo.mkdir()
            write_default_config(repo, "bench")
            results.update(_bench(repo, url, kind, users, iterations))
        return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--iterations", type=int, default=5_000)
    args = parser.parse_args()
    print(json.dumps(run(args.users, args.iterations), indent=2))
