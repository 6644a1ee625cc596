"""`strato doctor`: render `strato.store.doctor`'s checks, one line each, and exit 1 if any failed."""

from __future__ import annotations

import typer
from rich.markup import escape

from strato.cli import render
from strato.cli.options import RepoOption


def doctor(
    repo: RepoOption = None,
) -> None:
    """Check that the registry, online store and offline engine are reachable and set up.

    One line per check: ✔ when it passed, ✘ with what is wrong and what to do. Exits 0 when
    every check passed, 1 otherwise.
    """
    from strato.store.doctor import diagnose

    report = diagnose(repo)
    for check in report.checks:
        mark = "[green]✔[/]" if check.ok else "[red]✘[/]"
        render.console.print(
            f"{mark} [bold]{escape(check.name)}[/]: {escape(check.detail)}", highlight=False, soft_wrap=True
        )
    failed = sum(not c.ok for c in report.checks)
    if failed:
        render.console.print(f"{failed} of {len(report.checks)} checks failed", highlight=False)
        raise typer.Exit(1)
