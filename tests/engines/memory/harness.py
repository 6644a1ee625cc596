"""Harness of the memory online store: nothing to start, no options to give."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def options(tmp_path: Path) -> dict[str, Any]:
    """Options of a fresh, empty store; the memory store needs none."""
    return {}
