"""What HTTP costs: `strato serve` 1 entity x 120 features beside the same lookup in process.

``uv run python bench/server.py [--iterations N]`` starts a real `strato serve` (one worker, LMDB) on a
free loopback port, and prints (and writes to ``bench/server.json``) one JSON object:

- ``http_1x120_p50_us``, ``_p99_us``: ``POST /get-online-features`` for one entity and 120 Float64
  features over one keep-alive connection (``http.client``, the lightest Python client);
- ``http_raw_health_p99_us``: ``GET /health`` on the same connection, the HTTP floor of this server;
- ``inproc_1x120_to_dict_p50_us``, ``_p99_us``: ``get_online_features(...).to_dict()`` in process, the
  raw baseline;
- ``inproc_1x120_render_p50_us``, ``_p99_us``: the same lookup plus the server's Feast rendering and
  ``orjson.dumps``: what a request costs without HTTP.

HTTP and in-process rounds alternate so noise lands on both. Not asserted in tests.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64
from strato.config import write_default_config
from strato.server import feast

FEATURES = 120
USERS = 1000


def _percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1e6
    return round(float(np.percentile(a, 50)), 1), round(float(np.percentile(a, 99)), 1)


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        fn()
        out.append(clock() - t)
    return out


def wide_repo(repo: Path, *, auth: bool) -> str | None:
    """A repo of one view of 120 Float64 features for `USERS` users; with `auth`, access control
    on (the server's default) and a reader token, returned."""
    user = Entity("user", join_keys={"user_id": Int64})
    view = FeatureView("wide", entities=[user], schema=[Field(f"f{i}", Float64) for i in range(FEATURES)])
    write_default_config(repo, "bench")
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    with FeatureStore(repo) as store:
        store.apply([user, view])
        data = {"user_id": list(range(USERS)), "event_timestamp": [now] * USERS}
        data.update({f"f{i}": rng.random(USERS).tolist() for i in range(FEATURES)})
        store.write("wide", data)
        if not auth:
            return None
        from strato.access import admin

        boss = admin.enable(store.access, created_by="bench").text
    with FeatureStore(repo, token=boss) as admin_store:
        return admin.create_token(admin_store.access, "reader", name="bench", created_by="bench").text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(repo: Path, port: int, token: str | None, *extra: str) -> subprocess.Popen[bytes]:
    """`strato serve` on `repo` (``--no-auth`` without a token); returns once it answers /health."""
    strato = Path(sys.executable).parent / "strato"
    proc = subprocess.Popen(
        [
            str(strato),
            "serve",
            "--repo",
            str(repo),
            "--port",
            str(port),
            *(["--no-auth"] if token is None else []),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"strato serve did not start on port {port}") from None
            time.sleep(0.1)
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-auth", action="store_true", help="serve without tokens (default: a reader token)")
    args = parser.parse_args()
    refs = [f"wide:f{i}" for i in range(FEATURES)]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        token = wide_repo(repo, auth=not args.no_auth)
        port = free_port()
        proc = start_serve(repo, port, token)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            body = orjson.dumps({"features": refs, "entities": {"user_id": [7]}})
            headers = {"content-type": "application/json"}
            if token is not None:
                headers["authorization"] = f"Bearer {token}"

            def http_get() -> None:
                conn.request("POST", "/get-online-features", body, headers)
                r = conn.getresponse()
                r.read()
                assert r.status == 200

            def health() -> None:
                conn.request("GET", "/health")
                conn.getresponse().read()

            with FeatureStore(repo, read_only=True, token=token) as store:
                rows = [{"user_id": 7}]
                entities = {"user_id": [7]}

                def to_dict() -> None:
                    store.get_online_features(refs, rows).to_dict()

                def render() -> None:
                    orjson.dumps(feast.render(store.get_online_features(refs, entities), entities)[0])

                cases: dict[str, Callable[[], None]] = {
                    "http_1x120": http_get,
                    "http_raw_health": health,
                    "inproc_1x120_to_dict": to_dict,
                    "inproc_1x120_render": render,
                }
                samples: dict[str, list[float]] = {k: [] for k in cases}
                for fn in cases.values():
                    _time(fn, 200)  # warm up
                gc.disable()
                try:
                    for _ in range(args.rounds):
                        for name, fn in cases.items():
                            samples[name] += _time(fn, args.iterations // args.rounds)
                finally:
                    gc.enable()
            conn.close()
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(30)
    out: dict[str, object] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
        "load": os.getloadavg()[0],
    }
    for name, values in samples.items():
        p50, p99 = _percentiles(values)
        out[f"{name}_p50_us"] = p50
        out[f"{name}_p99_us"] = p99
    text = json.dumps(out, indent=2)
    print(text)
    (Path(__file__).parent / "server.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
