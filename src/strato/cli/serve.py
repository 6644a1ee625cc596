"""`strato serve`: the feature server (`strato.server`) under uvicorn, one or more workers."""

from __future__ import annotations

import ipaddress
import os
import signal
from typing import Annotated

import typer

from strato.cli.options import RepoOption
from strato.errors import UserError


def serve(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind (default: server.host, 127.0.0.1).", show_default=False),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port to listen on (default: server.port, 6566).", show_default=False)
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes, sharing the online store (default: server.workers, 1).",
            show_default=False,
        ),
    ] = None,
    repo: RepoOption = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-body-bytes",
            help="Largest request body accepted (default: server.max_body_bytes).",
            show_default=False,
        ),
    ] = None,
    max_batch_rows: Annotated[
        int | None,
        typer.Option(
            "--max-batch-rows",
            help="Most entity or pushed rows per request (default: server.max_batch_rows).",
            show_default=False,
        ),
    ] = None,
    backend_timeout: Annotated[
        float | None,
        typer.Option(
            "--backend-timeout",
            help="Seconds a request waits on a backend call before a 504 (default: server.backend_timeout_s, 5).",
            show_default=False,
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without checking tokens; refused unless bound to loopback (default: server.auth).",
        ),
    ] = False,
) -> None:
    """Serve online features over HTTP in Feast's shapes (POST /get-online-features, /push, …).

    Each worker opens the store itself after it starts; SIGTERM finishes in-flight requests and exits 0.
    Options left out come from the ``server:`` section of strato.yaml (or STRATO_SERVER__* variables).
    Every request but /health needs `Authorization: Bearer <token>` (`strato access enable`);
    --no-auth serves without tokens, on a loopback address only.
    """
    from strato.config import CONFIG_FILE, load_config
    from strato.server.settings import SETTINGS_ENV, ServerSettings
    from strato.store import FeatureStore

    config = load_config(repo)
    defaults = config.server
    host = defaults.host if host is None else host
    port = defaults.port if port is None else port
    workers = defaults.workers if workers is None else workers
    max_body_bytes = defaults.max_body_bytes if max_body_bytes is None else max_body_bytes
    max_batch_rows = defaults.max_batch_rows if max_batch_rows is None else max_batch_rows
    backend_timeout = defaults.backend_timeout_s if backend_timeout is None else backend_timeout
    if not backend_timeout > 0:
        raise UserError(f"--backend-timeout: expected a positive number of seconds, got {backend_timeout}")
    if workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    if not 0 < port < 65536:
        raise UserError(f"--port: expected 1-65535, got {port}")
    if not (config.repo_path / CONFIG_FILE).is_file():
        raise UserError(f"no feature repo: no {CONFIG_FILE} in {config.repo_path}; create one with `strato init`")
    auth = defaults.auth and not no_auth
    if not auth and not _is_loopback(host):
        raise UserError(
            f"--no-auth: refused on {host}, which other hosts can reach; bind to 127.0.0.1 (or ::1), "
            "or turn access control on with `strato access enable` and serve with tokens"
        )
    settings = ServerSettings(
        repo=config.repo_path,
        max_body_bytes=max_body_bytes,
        max_batch_rows=max_batch_rows,
        auth=auth,
        backend_timeout_s=backend_timeout,
    )
    with FeatureStore(config=config, read_only=True) as store:  # nothing applied yet: one clear line, before any worker
        if auth and not store.access.access.enabled:
            raise UserError(
                f"the server requires tokens but access control is off for project {store.project!r}: "
                "run `strato access enable` (it prints the first admin token), or serve with --no-auth on loopback"
            )
    os.environ[SETTINGS_ENV] = settings.to_env()

    import uvicorn

    # uvicorn handles SIGTERM/SIGINT while serving and raises them again once shut down:
    # that second delivery is a finished shutdown, not an interrupt of this command.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    uvicorn.run(
        "strato.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=30,
        access_log=False,
        log_level="info",
    )


def _is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to anything
