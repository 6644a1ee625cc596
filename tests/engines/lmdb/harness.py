"""Harness of the LMDB online store: a fresh environment in the test's temporary directory.

LMDB is embedded, so there is no server to start or stop. `sync` is off because the
contract tests commit thousands of tiny transactions and never crash the machine; the
LMDB-only tests exercise the durable default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store under `tmp_path`."""
    return {"path": str(tmp_path / "online"), "sync": False}
