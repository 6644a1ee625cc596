"""Find the definitions in a feature repo: every Entity, FeatureView, OnDemandFeatureView and FeatureService
bound to a module-level name in the repo's Python files (Feast's convention).

Which files count: every ``*.py`` under the repo, minus `DEFAULT_IGNORE` and the patterns of the
repo's ``.stratoignore`` (gitignore syntax, like Feast's ``.feastignore``; later lines win, so
``!tests/`` brings a default back). Ignored folders are not even walked (a ``.venv`` is large).

How they load: with the repo folder first on ``sys.path`` and each file under its own module
name (``features``, ``defs.views``), so definition files can import each other and share the
same objects. Afterwards the repo's modules are taken out of ``sys.modules`` again: loading two
repos in one process never mixes them. An error while importing a file — a bad definition, any
exception, even ``sys.exit`` — becomes one `DefinitionError` naming the file and line.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType

import pathspec

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.on_demand import OnDemandFeatureView
from strato.definitions.plan import Definition
from strato.errors import DefinitionError

IGNORE_FILE = ".stratoignore"

DEFAULT_IGNORE = """\
# hidden files and folders: .strato (the store), .git, .venv, .ipynb_checkpoints, ...
.*
__pycache__/
venv/
node_modules/
site-packages/
data/
# tests and private modules
tests/
test_*.py
*_test.py
conftest.py
_*.py
setup.py
"""


def _ignore_spec(repo: Path) -> pathspec.GitIgnoreSpec:
    lines = DEFAULT_IGNORE.splitlines()
    ignore_file = repo / IGNORE_FILE
    if ignore_file.is_file():
        try:
            lines += ignore_file.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError(f"{IGNORE_FILE}: cannot be read ({exc})") from None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception as exc:  # pathspec raises several kinds for a malformed pattern
        raise DefinitionError(f"{IGNORE_FILE}: {exc}") from None


def definition_files(repo: Path) -> list[Path]:
    """The repo's definition files, sorted: every ``*.py`` that no ignore pattern matches."""
    spec = _ignore_spec(repo)
    found = []
    for folder, dirs, files in os.walk(repo):
        here = Path(folder).relative_to(repo)
        # Prune ignored folders in place, so os.walk never descends into them.
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(here / d).as_posix()}/"))
        found += [
            Path(folder) / name
            for name in files
            if name.endswith(".py") and not spec.match_file((here / name).as_posix())
        ]
    return sorted(found)


def load_definitions(repo: Path) -> list[Definition]:
    """Import each definitions file of `repo` and collect its definitions, de-duplicated by identity."""
    repo = repo.resolve()
    files = definition_files(repo)
    found: dict[int, Definition] = {}
    with _repo_importable(repo):
        for path in files:
            module = _import(repo, path)
            for value in vars(module).values():
                if isinstance(value, (Entity, FeatureView, FeatureService, OnDemandFeatureView)):
                    found[id(value)] = value
    return list(found.values())


def _module_name(repo: Path, path: Path) -> str | None:
    """``defs/views.py`` → ``defs.views``; None if a part is no Python identifier."""
    parts = [*path.relative_to(repo).parent.parts, path.stem]
    return ".".join(parts) if all(p.isidentifier() for p in parts) else None


def _import(repo: Path, path: Path) -> ModuleType:
    """Import one file; every failure becomes a `DefinitionError` that names the file and line."""
    relative = path.relative_to(repo).as_posix()
    name = _module_name(repo, path)
    if name is not None:
        clash = sys.modules.get(name.partition(".")[0])
        origin = getattr(clash, "__file__", None) or ""
        if clash is not None and not _inside(repo, origin):
            raise DefinitionError(
                f"{relative}: its module name {name.partition('.')[0]!r} is already taken by {origin or 'a built-in'}; "
                f"rename the file, or list it in {IGNORE_FILE} if it holds no definitions"
            )
    try:
        if name is not None:
            return importlib.import_module(name)
        # A file name Python cannot import (``my-features.py``): load it under a private name.
        private = f"_strato_repo_{abs(hash(path))}"
        spec = importlib.util.spec_from_file_location(private, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[private] = module
        spec.loader.exec_module(module)
        return module
    except SystemExit as exc:  # a script's `sys.exit(3)` must not end the command in silence
        raise DefinitionError(
            f"{_where(repo, relative, exc)}: called sys.exit({exc.code!r}) while being imported; a definitions file "
            f"must not exit — guard script code with `if __name__ == '__main__':` or list the file in {IGNORE_FILE}"
        ) from exc
    except DefinitionError as exc:
        raise DefinitionError(f"{_where(repo, relative, exc)}: {exc}") from exc
    except Exception as exc:
        message = " ".join(str(exc).splitlines())
        raise DefinitionError(
            f"{_where(repo, relative, exc)}: failed to import ({type(exc).__name__}: {message})"
        ) from exc


def _inside(repo: Path, file: str) -> bool:
    return bool(file) and Path(file).resolve().is_relative_to(repo)


def _where(repo: Path, relative: str, exc: BaseException) -> str:
    """``file:line`` of the innermost repo frame of `exc` (for a syntax error, where it is)."""
    if isinstance(exc, SyntaxError) and exc.filename and _inside(repo, exc.filename):
        return f"{Path(exc.filename).resolve().relative_to(repo).as_posix()}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _inside(repo, f.filename)]
    if not frames:
        return relative
    last = frames[-1]
    return f"{Path(last.filename).resolve().relative_to(repo).as_posix()}:{last.lineno}"


@contextmanager
def _repo_importable(repo: Path) -> Iterator[None]:
    """The repo first on ``sys.path`` while loading; its modules forgotten (and no byte code left) after."""
    before = set(sys.modules)
    bytecode = sys.dont_write_bytecode
    sys.path.insert(0, str(repo))
    sys.dont_write_bytecode = True
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.dont_write_bytecode = bytecode
        with suppress(ValueError):
            sys.path.remove(str(repo))
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            if name.startswith("_strato_repo_") or _inside(repo, getattr(module, "__file__", None) or ""):
                del sys.modules[name]
            elif module is not None and getattr(module, "__file__", None) is None:
                # A namespace package of the repo (a folder without __init__.py).
                paths = list(getattr(module, "__path__", []) or [])
                if paths and all(_inside(repo, p) for p in paths):
                    del sys.modules[name]
