"""How ``strato … --help`` reads: flags shown as flags, and examples under every command.

Typer's rich help prints a value type beside every option, flags included (``--json <bool>``),
as if a flag took a value. `show_flags_as_flags` drops the type of options that take none.
`examples` gives the epilog of a command: lines a user can copy, in the order of a session.
"""

from __future__ import annotations

from typing import Any

_EXAMPLES: dict[str, list[str]] = {
    "version": ["strato version"],
    "init": ["strato init my_repo", "strato init fraud-repo --project fraud"],
    "plan": [
        "strato plan",
        "strato plan -r my_repo",
        "strato plan --new-version user_stats      # after retyping a field",
        "strato plan --delete service:fraud_model_v1",
    ],
    "apply": [
        "strato apply",
        "strato apply --new-version user_stats",
        "strato apply --delete view:old_stats",
    ],
    "ls": ["strato ls", "strato ls entities", "strato ls services -r my_repo"],
    "describe": [
        "strato describe view user_stats",
        "strato describe view user_stats --version 1",
        "strato describe service fraud_model_v1",
    ],
    "history": ["strato history view user_stats"],
    "quarantine": [
        "strato quarantine transactions",
        "strato quarantine transactions --out rejected.csv",
    ],
    "write": [
        "strato write user_stats stats.csv",
        "strato write user_stats stats.parquet --to offline",
        "strato write user_stats                  # from the view's source",
    ],
    "materialize": [
        "strato materialize --incremental",
        "strato materialize --start 2026-01-01 --end now --view user_stats",
    ],
    "prune": ["strato prune", "strato prune --view user_stats"],
    "get": [
        "strato get user_stats:amount_mean_7d -e user_id=7",
        "strato get user_stats:amount_mean_7d -e user_id=7 -e user_id=8 --json",
        "strato get --service fraud_model_v1 -e user_id=7,merchant_id=3",
    ],
    "serve": [
        "strato serve",
        "strato serve --port 8080 --workers 2",
        "strato serve -r fraud-repo --max-batch-rows 1000",
        "strato serve --no-auth                  # loopback only: no tokens asked",
        "strato serve --backend-timeout 0.5      # 504 past 0.5 s on a backend",
    ],
    "sql": [
        'strato sql "select count(*) from user_stats"',
        'strato sql "select * from user_stats order by event_timestamp" --limit 5',
    ],
    "doctor": ["strato doctor", "strato doctor -r fraud-repo"],
    "ingest": [
        "strato ingest                            # every view with a KafkaSource",
        "strato ingest card_swipes --metrics-port 9108",
        "strato ingest card_swipes --group ingest-eu --compact-every 100",
    ],
    "config": ["strato config", "STRATO_ONLINE__SYNC=false strato config"],
    "quickstart": ["strato quickstart", "strato quickstart --dir /tmp/demo --users 2000"],
}


def examples(command: str) -> str:
    """The ``Examples:`` epilog of `command` (its lines never wrap in a terminal of 80 columns)."""
    lines = "\n".join(f"  {line}" for line in _EXAMPLES[command])
    return f"[bold]Examples:[/]\n{lines}"


def show_flags_as_flags() -> None:
    """Make typer's rich help show no value type for flags (``--json``, ``--help``, …)."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover - another typer layout: its help is left as it is
        return
    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_strato_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        result: str | None = original(self, ctx)
        return result

    display_type_rich._strato_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def strato_command() -> str:
    """How to run `strato` from the current folder, so that a printed hint works as printed.

    ``strato`` when that name on the user's PATH is this very script; otherwise a path to the
    script (relative when it lies below the current folder, e.g. ``.venv/bin/strato``). Under
    ``uv run`` or ``make`` the PATH seen here is not the user's shell's, so a path is printed.
    """
    import os
    import shlex
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if script.name != "strato" or not script.is_file():  # python -m, an embedding program, a test
        beside = Path(sys.executable).parent / "strato"
        if not beside.is_file():
            return "strato"
        script = beside
    script = Path(os.path.abspath(script))
    borrowed_path = "UV_RUN_RECURSION_DEPTH" in os.environ or "MAKELEVEL" in os.environ
    on_path = shutil.which("strato")
    if not borrowed_path and on_path is not None and Path(os.path.abspath(on_path)) == script:
        return "strato"
    relative = os.path.relpath(script)
    shown = str(script) if relative.startswith("..") else relative if os.sep in relative else f"./{relative}"
    return shlex.quote(shown)


def activate_hint() -> str | None:
    """``source .venv/bin/activate`` (relative when possible) when `strato` is not on PATH as is."""
    import os
    import shlex
    from pathlib import Path

    command = strato_command()
    if command == "strato":
        return None
    activate = Path(shlex.split(command)[0]).parent / "activate"
    if not activate.is_file():
        return None
    return f"source {shlex.quote(str(activate) if activate.is_absolute() else os.path.normpath(activate))}"
