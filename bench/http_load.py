"""Feature-server throughput: `wrk` with 64 keep-alive connections against `strato serve`.

``uv run python -m bench.http_load [--seconds 10] [--workers 2]`` writes the 120-feature repo of
`bench.server`, starts `strato serve --workers N` on a free loopback port (access control on, a
reader token, as served by default) and runs, each for the same duration:

- ``http_rps``: ``POST /get-online-features``, 1 entity x 120 Float64 features, entity ids
  cycling over the users (a Lua script builds each body), 64 connections, one wrk thread
  (a second one took CPU from the server: 9.3K beside 9.9K requests/s);
- ``http_health_rps``: ``GET /health`` on the same server and connections, the HTTP floor.

Both report wrk's latency percentiles and count errors (socket errors, non-2xx answers).
`wrk` comes from Debian (`make bench` installs it); without it this prints a reason and no figure.
wrk shares the 2 cores with the server, so the figure is a floor of what a separate load host sees.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.server import FEATURES, USERS, free_port, start_serve, wide_repo

_LUA = """
local refs = {}
for i = 0, %(features)d - 1 do refs[#refs + 1] = '"wide:f' .. i .. '"' end
local features = table.concat(refs, ",")
local n = 0
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
%(auth)s
request = function()
  n = n + 1
  local body = '{"features":[' .. features .. '],"entities":{"user_id":[' .. (n %% %(users)d) .. ']}}'
  return wrk.format(nil, "/get-online-features", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("STRATO %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""

_HEALTH_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("STRATO %d %d %d %d %d %d\\n", summary.requests, summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def _wrk(url: str, script: Path, seconds: int, connections: int, threads: int = 1) -> dict[str, float]:
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = re.search(r"^STRATO (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", done.stdout, re.M)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    requests, errors, bad_status, p50, p99, duration_us = (int(x) for x in line.groups())
    return {
        "rps": round(requests / (duration_us / 1e6)),
        "requests": requests,
        "errors": errors + bad_status,
        "p50_us": p50,
        "p99_us": p99,
    }


def run(seconds: int = 10, workers: int = 2, connections: int = 64) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        print("http_load: wrk is not installed (Debian's wrk; `make bench` installs it): no throughput figure")
        return {}
    with tempfile.TemporaryDirectory(prefix="strato-bench-http-") as tmp:
        repo = Path(tmp)
        token = wide_repo(repo, auth=True)
        assert token is not None
        port = free_port()
        lookup = repo / "lookup.lua"
        auth = f'wrk.headers["authorization"] = "Bearer {token}"'
        lookup.write_text(_LUA % {"features": FEATURES, "users": USERS, "auth": auth})
        health = repo / "health.lua"
        health.write_text(_HEALTH_LUA)
        proc = start_serve(repo, port, token, "--workers", str(workers))
        try:
            url = f"http://127.0.0.1:{port}"
            _wrk(url + "/health", health, 2, connections)  # warm up every worker
            got = _wrk(url + "/get-online-features", lookup, seconds, connections)
            floor = _wrk(url + "/health", health, seconds, connections)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(30)
    return {
        "http_rps": got["rps"],
        "http_rps_p50_us": got["p50_us"],
        "http_rps_p99_us": got["p99_us"],
        "http_rps_errors": got["errors"],
        "http_health_rps": floor["rps"],
        "http_health_rps_errors": floor["errors"],
        "http_rps_connections": connections,
        "http_rps_workers": workers,
        "http_rps_load": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.workers, args.connections), indent=2))


if __name__ == "__main__":
    main()
