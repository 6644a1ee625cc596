"""Find the definitions in a feature repo: every Entity, FeatureView and FeatureService
bound to a module-level name in the repo's Python files (Feast's convention)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView
from strato.definitions.plan import Definition
from strato.errors import DefinitionError

_SKIP_DIRS = {".strato", ".venv", "venv", "__pycache__", ".git", "data"}


def definition_files(repo: Path) -> list[Path]:
    return sorted(
        p
        for p in repo.rglob("*.py")
        if not (_SKIP_DIRS & set(p.relative_to(repo).parts)) and not p.name.startswith(("_", "test_"))
    )


def load_definitions(repo: Path) -> list[Definition]:
    """Import each definitions file of `repo` and collect its definitions, de-duplicated by identity."""
    found: dict[int, Definition] = {}
    for path in definition_files(repo):
        module_name = f"_strato_repo_{abs(hash(path))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except DefinitionError as exc:
            raise DefinitionError(f"{path.name}: {exc}") from None
        except Exception as exc:
            raise DefinitionError(f"{path.name}: failed to import ({type(exc).__name__}: {exc})") from exc
        finally:
            sys.modules.pop(module_name, None)
        for value in vars(module).values():
            if isinstance(value, (Entity, FeatureView, FeatureService)):
                found[id(value)] = value
    return list(found.values())
