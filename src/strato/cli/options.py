"""Options several `strato` commands share, declared once so their help reads the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RepoOption = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        "-r",
        metavar="PATH",
        help="Feature repo folder (default: nearest folder with strato.yaml).",
        show_default=False,
    ),
]
