"""The server's own settings: where the repo is, and the limits a request must keep to."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from strato.errors import ConfigError

SETTINGS_ENV = "STRATO_SERVE_SETTINGS"
"""How `strato serve` hands its settings to each worker's app factory (JSON)."""


@dataclass(frozen=True)
class ServerSettings:
    """Request limits and the repo served.

    Limits bound what one request may cost a worker: a body over `max_body_bytes` is refused
    before it is read whole, a batch over `max_batch_rows` entity (or pushed) rows before it
    reaches the store.
    """

    repo: Path | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_rows: int = 10_000
    auth: bool = True
    """Check every request's bearer token (`strato.server.auth`); off only on loopback."""
    backend_timeout_s: float = 5.0
    """Longest a request waits on one backend call before it is answered 504 (`app._Server.call`)."""

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_batch_rows"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"server setting {name}: expected a positive integer, got {value!r}")
        timeout = self.backend_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(
                f"server setting backend_timeout_s: expected a positive number of seconds, got {timeout!r}"
            )

    def to_env(self) -> str:
        data: dict[str, Any] = dataclasses.asdict(self)
        data["repo"] = None if self.repo is None else str(self.repo)
        return orjson.dumps(data).decode()

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings `strato serve` put in the environment (defaults when there are none)."""
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            return cls()
        data = orjson.loads(text)
        repo = data.pop("repo", None)
        return cls(repo=None if repo is None else Path(repo), **data)
