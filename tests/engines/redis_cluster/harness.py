"""Harness of the Redis online store on a Redis Cluster: three masters the session starts once.

The servers, their lifetime and the per-test key prefix are the Redis harness's
(tests/engines/redis/harness.py), loaded here by path as the contract suite loads this file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

_spec = importlib.util.spec_from_file_location(
    "_strato_redis_harness_for_cluster", Path(__file__).resolve().parents[1] / "redis" / "harness.py"
)
assert _spec is not None
assert _spec.loader is not None
_redis = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_redis)


def options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store on the session's cluster."""
    return dict(_redis.cluster_options(tmp_path))
