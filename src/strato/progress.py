"""Progress for long-running work (materialize, bulk writes): rows done and rows/s on stderr."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class RowProgress(Protocol):
    def advance(self, rows: int) -> None: ...


class _Silent:
    def advance(self, rows: int) -> None:
        pass


class _Bar:
    def __init__(self, progress: Progress, task: int):
        self._progress, self._task, self._start, self._rows = progress, task, time.perf_counter(), 0

    def advance(self, rows: int) -> None:
        self._rows += rows
        rate = self._rows / max(time.perf_counter() - self._start, 1e-9)
        self._progress.update(self._task, advance=rows, rate=f"{rate:,.0f} rows/s")  # type: ignore[arg-type]


@contextmanager
def row_progress(description: str, total: int | None, *, enabled: bool) -> Iterator[RowProgress]:
    """A progress bar counting rows (with rows/s); a no-op when `enabled` is False."""
    if not enabled:
        yield _Silent()
        return
    # With a known total: a bar and "done/total"; without one, a running count (no "/?").
    counted: list[ProgressColumn] = (
        [BarColumn(), MofNCompleteColumn()] if total is not None else [TextColumn("{task.completed:,.0f}")]
    )
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        *counted,
        TextColumn("rows · {task.fields[rate]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total, rate="")
        yield _Bar(progress, task)
