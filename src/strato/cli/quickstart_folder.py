"""The folder `strato quickstart` builds its demo in, and the only rule by which it deletes one.

A re-run replaces a previous demo, so quickstart must delete folders; it must never delete a
user's. The proof is a marker file, ``.strato-quickstart``, that quickstart writes last, holding
a random token and the SHA-256 of every file it wrote. A folder is replaced only if the marker is
there, parses, and the folder holds nothing but those files, unchanged, plus the store's own
``.strato/`` folder (registry, history, online store) and ``__pycache__/``. Anything else — a
user's file, an edited ``features.py``, a folder without the marker — is refused, naming it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

from strato.errors import UserError

MARKER = ".strato-quickstart"
_MARKER_KIND = "strato quickstart demo folder"
# Written by Strato itself while the demo runs: the store's data folder and Python's byte code.
_STORE_DIRS = frozenset({".strato", "__pycache__"})


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(path: Path) -> None:
    """Make `path` an empty folder, replacing a previous demo; refuse any other non-empty folder."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UserError(f"{path} exists and is not a folder; choose another with --dir")
    if path.is_dir() and any(path.iterdir()):
        _check_is_previous_demo(path)
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def seal(path: Path, names: Sequence[str]) -> None:
    """Write the marker: a random token and the digest of each file quickstart wrote in `path`."""
    marker = {
        "kind": _MARKER_KIND,
        "token": secrets.token_hex(16),
        "files": {name: _digest(path / name) for name in names},
    }
    (path / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _check_is_previous_demo(path: Path) -> None:
    """Raise unless `path` holds exactly what an earlier `prepare` wrote (plus store data)."""
    refuse = f"{path} is not empty and was not created by `strato quickstart`"
    marker_file = path / MARKER
    if not marker_file.is_file() or marker_file.is_symlink():
        raise UserError(f"{refuse} (no {MARKER} marker in it); choose another folder with --dir")
    try:
        marker = json.loads(marker_file.read_text())
        files = marker["files"]
        valid = marker["kind"] == _MARKER_KIND and isinstance(marker["token"], str) and isinstance(files, dict)
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise UserError(f"{refuse} ({marker_file} is not a quickstart marker); choose another folder with --dir")
    for entry in sorted(path.iterdir()):
        name = entry.name
        if name == MARKER:
            continue
        if name in _STORE_DIRS and entry.is_dir() and not entry.is_symlink():
            continue
        if name not in files or entry.is_symlink() or not entry.is_file():
            raise UserError(
                f"{path} holds {entry}, which `strato quickstart` did not create; "
                "nothing was deleted — move it away or choose another folder with --dir"
            )
        if _digest(entry) != files[name]:
            raise UserError(
                f"{entry} was changed since `strato quickstart` wrote it; "
                "nothing was deleted — move it away or choose another folder with --dir"
            )
