"""Windowed-aggregation tile merges on Redis: compare-and-set (`write_if`) beside a plain write.

`TileWriter.apply` reads each entity's tile row, merges the batch's events and stores the
row with `write_if`, expecting the bytes it read, so writers on several machines lose no
event. This measures what that costs and how it behaves under contention, on a
`redis-server` the bench starts on loopback (stopped by PID at the end; no figures without
`redis-server`). One view, 4 aggregates of ``amount`` over 1 hour; `entities` users; each
batch holds one event per user.

- ``tile_cas_batch_p50_ms`` / ``_p99_ms``: one `apply` of a batch, rows stored by `write_if`;
- ``tile_plain_batch_p50_ms`` / ``_p99_ms``: the same with `compare_and_set` off (plain
  rule-4 `write`, the same-machine lock alone: what it did before);
- ``tile_raw_batch_p50_ms`` / ``_p99_ms``: the baseline, raw redis-py ``MGET`` of the same
  tile keys plus one pipelined ``SET`` of the same bytes back (no merge, no comparison);
- ``tile_contended_events_per_s``, ``tile_contended_lost_races``: `writers` processes with
  separate lock files (as on separate machines) applying batches to the same users at once;
  events merged per second in all, and rows merged again after a lost compare-and-set
  ``tile_contended_events_counted`` is the users' 1-hour counts summed from the stored
  tiles, to set beside ``tile_contended_events_expected`` (no event lost, none twice).

Run alone: ``uv run python -m bench.tile_cas --entities 1000 --batches 50 --writers 4``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pyarrow as pa
import redis

from bench.redis_online import _port, _start
from strato import Aggregation, Entity, FeatureView, Field, Float64, Int64, plugins
from strato.online.base import table_prefix
from strato.online.codec import HEADER_SIZE, KeyCodec
from strato.store.aggregations import LOCK_FILE, TileWriter, layout_of, tiles_table
from strato.streaming.tiles import ReadPlan

HOUR = timedelta(hours=1)


def _view() -> FeatureView:
    user = Entity("user", join_keys={"user_id": Int64})
    aggregations = [Aggregation("amount", fn, HOUR) for fn in ("count", "sum", "mean", "max")]  # type: ignore[arg-type]
    return FeatureView("txns", entities=[user], schema=[Field("amount", Float64)], aggregations=aggregations)


def _batch(entities: int, b: int, writer: int = 0) -> pa.Table:
    base = datetime.now(UTC) - timedelta(minutes=5)
    return pa.table(
        {
            "user_id": pa.array(np.arange(entities), pa.int64()),
            "event_timestamp": pa.array(
                [base - timedelta(microseconds=b * 100 + writer)] * entities, pa.timestamp("us", tz="UTC")
            ),
            "amount": pa.array(np.full(entities, float(b + 1)), pa.float64()),
        }
    )


def _open(url: str) -> Any:
    cls = plugins.load("online", "redis")
    return cls.open(cls.options_model(url=url), project="bench")


def _writer(url: str, lock: str, entities: int, batches: int, writer: int, start: Any, out: Any) -> None:
    store, tiles = _open(url), TileWriter(Path(lock))
    view = _view()
    prepared = [_batch(entities, b, writer) for b in range(batches)]
    start.wait(60)
    merged = sum(tiles.apply(store, view, rows, time.time_ns() // 1000) for rows in prepared)
    out.put((merged, tiles.lost_races))
    store.close()


def _ms(samples: list[float]) -> tuple[float, float]:
    return round(float(np.percentile(samples, 50)) * 1e3, 2), round(float(np.percentile(samples, 99)) * 1e3, 2)


def run(entities: int = 1_000, batches: int = 50, writers: int = 4) -> dict[str, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        return {}
    out: dict[str, Any] = {}
    view = _view()
    with tempfile.TemporaryDirectory(prefix="strato-bench-cas-") as tmp:
        port = _port()
        server = _start(binary, Path(tmp) / "redis", port)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            store = _open(url)
            cls = type(store)
            keys = KeyCodec(view.join_keys).encode_columns([pa.chunked_array([np.arange(entities)])])
            full_keys = [table_prefix("bench", tiles_table(view)) + k for k in keys]
            raw = redis.Redis.from_url(url)
            cases: dict[str, list[float]] = {"cas": [], "plain": [], "raw": []}
            original = cls.capabilities
            for case in ("cas", "plain"):
                tiles = TileWriter(Path(tmp) / case / LOCK_FILE)
                cls.capabilities = original if case == "cas" else dataclasses.replace(original, compare_and_set=False)
                try:
                    for b in range(batches):
                        rows = _batch(entities, b)
                        began = time.perf_counter()
                        tiles.apply(store, view, rows, time.time_ns() // 1000)
                        cases[case].append(time.perf_counter() - began)
                finally:
                    cls.capabilities = original
                store.drop(tiles_table(view))
                tiles.close()
            # The baseline needs rows to read: the last case's were dropped, so write them once more.
            TileWriter(Path(tmp) / "fill" / LOCK_FILE).apply(store, view, _batch(entities, 0), time.time_ns() // 1000)
            for _ in range(batches):
                began = time.perf_counter()
                values = raw.mget(full_keys)
                pipe = raw.pipeline(transaction=False)
                for key, value in zip(full_keys, values, strict=True):
                    pipe.set(key, value)
                pipe.execute()
                cases["raw"].append(time.perf_counter() - began)
            store.drop(tiles_table(view))
            for case, samples in cases.items():
                out[f"tile_{case}_batch_p50_ms"], out[f"tile_{case}_batch_p99_ms"] = _ms(samples)
            # Contention: separate lock files, one Redis.
            ctx = multiprocessing.get_context("spawn")
            start, results = ctx.Event(), ctx.Queue()
            procs = [
                ctx.Process(
                    target=_writer,
                    args=(url, str(Path(tmp) / f"m{w}" / LOCK_FILE), entities, batches, w, start, results),
                )
                for w in range(writers)
            ]
            for p in procs:
                p.start()
            time.sleep(3)  # let every writer import and prepare its batches
            began = time.perf_counter()
            start.set()
            answers = [results.get(timeout=600) for _ in procs]
            elapsed = time.perf_counter() - began
            for p in procs:
                p.join(timeout=60)
            merged = sum(a[0] for a in answers)
            # What the tiles hold: each user's 1-hour count, evaluated as a lookup would.
            layout = layout_of(view)
            plan = ReadPlan.of(layout, [o for o in layout.outputs if o.aggregation.function == "count"])
            now_us = time.time_ns() // 1000
            counted = sum(
                plan.evaluate_packed(msgpack.unpackb(v[HEADER_SIZE:], raw=False), now_us)[0]
                for v in store.read(tiles_table(view), keys)
            )
            out["tile_contended_events_counted"] = counted
            out["tile_contended_writers"] = writers
            out["tile_contended_events_per_s"] = round(merged / elapsed)
            out["tile_contended_lost_races"] = sum(a[1] for a in answers)
            out["tile_contended_events_merged"] = merged
            out["tile_contended_events_expected"] = writers * batches * entities
            store.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    out["tile_entities"], out["tile_batches"] = entities, batches
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.entities, args.batches, args.writers), indent=2))


if __name__ == "__main__":
    main()
