"""Registry latency: PostgreSQL beside SQLite, the same calls on the same definitions.

``uv run python bench/registry.py [--views N] [--repeat K] [--url postgresql://...]`` prints one JSON
object. Without ``--url`` it starts a throwaway PostgreSQL from Debian's binaries on loopback (as the
tests do, `tests/pg_server.py`; fsync off, so commits cost what a fast disk would), and stops it after.

- ``registry_apply_*_ms``: plan (``current()``) + ``apply`` of a one-view change (its description), in a
  project of ``--views`` views: one write transaction taking the project's lock;
- ``registry_list_*_ms``: ``list("feature_view")`` of all views (decoded definitions);
- ``registry_revision_*_ms``: ``revision()``, the poll a long-lived reader makes to notice applies.

Each key exists for ``sqlite`` and ``postgresql``; medians and p99 over ``--repeat`` calls, the two
backends alternating call by call. Not asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pg_server
from strato import Entity, FeatureView, Field, Float64, Int64
from strato.definitions.plan import make_plan
from strato.registry.backends.postgresql import PostgreSQLRegistry
from strato.registry.backends.sql import SQLRegistry
from strato.registry.base import RegistryStore

USER = Entity("user", join_keys={"user_id": Int64})


def views(n: int, revision: int) -> list[FeatureView]:
    schema = [Field(f"f{i}", Float64) for i in range(20)]
    return [
        FeatureView(f"view_{v}", entities=[USER], schema=schema, description=f"r{revision if v == 0 else 0}")
        for v in range(n)
    ]


def calls(registry: RegistryStore, n: int) -> dict[str, Callable[[], object]]:
    counter = iter(range(1, 10**9))

    def apply() -> object:
        plan = make_plan([USER, *views(n, next(counter))], registry.current())
        return registry.apply(plan, author="bench")

    return {"apply": apply, "list": lambda: registry.list("feature_view"), "revision": registry.revision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--url", help="an existing, empty PostgreSQL database (default: start one)")
    args = parser.parse_args()

    server = None
    if args.url is None:
        server = pg_server.Server()
        server.start()
    try:
        url = args.url or server.create_database()  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as folder:
            backends: dict[str, RegistryStore] = {
                "sqlite": SQLRegistry.open(f"sqlite:///{folder}/registry.db", project="bench"),
                "postgresql": PostgreSQLRegistry.open(url, project="bench"),
            }
            for registry in backends.values():
                registry.apply(make_plan([USER, *views(args.views, 0)], registry.current()), author="bench")
            funcs = {name: calls(registry, args.views) for name, registry in backends.items()}
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.repeat):
                for op in ("apply", "list", "revision"):
                    for name in backends:
                        began = time.perf_counter()
                        funcs[name][op]()
                        samples.setdefault((name, op), []).append((time.perf_counter() - began) * 1000)
            for registry in backends.values():
                registry.close()
    finally:
        if server is not None:
            server.destroy()

    out: dict[str, float | int] = {"views": args.views, "repeat": args.repeat}
    for (name, op), times in sorted(samples.items()):
        times.sort()
        out[f"registry_{op}_{name}_p50_ms"] = round(statistics.median(times), 3)
        out[f"registry_{op}_{name}_p99_ms"] = round(times[min(len(times) - 1, int(len(times) * 0.99))], 3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
