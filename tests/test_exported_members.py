"""The public API: every name in `strato.__all__` imports and documents itself."""

from __future__ import annotations

import importlib
import inspect

import pytest

import strato
from strato import DType

PUBLIC = sorted(strato.__all__)


def test_all_lists_each_name_once() -> None:
    assert len(PUBLIC) == len(set(PUBLIC))
    assert PUBLIC, "strato.__all__ is empty"


@pytest.mark.parametrize("name", PUBLIC)
def test_name_is_importable(name: str) -> None:
    module = importlib.import_module("strato")
    assert hasattr(module, name), f"strato.__all__ lists {name!r}, which strato does not define"
    namespace: dict[str, object] = {}
    exec(f"from strato import {name}", namespace)
    assert namespace[name] is getattr(strato, name)


@pytest.mark.parametrize(
    "name", [n for n in PUBLIC if inspect.isclass(getattr(strato, n)) or inspect.isroutine(getattr(strato, n))]
)
def test_classes_and_functions_have_docstrings(name: str) -> None:
    obj = getattr(strato, name)
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    assert doc, f"strato.{name} has no docstring"
    assert doc.strip(), f"strato.{name} has an empty docstring"
    # A dataclass without a docstring gets its signature as one: that documents nothing.
    assert not doc.startswith(f"{name}("), f"strato.{name} has only the generated dataclass docstring"


@pytest.mark.parametrize("name", [n for n in PUBLIC if isinstance(getattr(strato, n), DType)])
def test_type_constants_are_documented_by_their_class(name: str) -> None:
    value = getattr(strato, name)
    assert str(value) == name.lower()
    assert DType.__doc__


def test_version_is_a_version_string() -> None:
    assert isinstance(strato.__version__, str)
    assert strato.__version__.count(".") >= 2


def _public_members() -> list[str]:
    members = []
    for name in PUBLIC:
        obj = getattr(strato, name)
        if not inspect.isclass(obj):
            continue
        for member, value in vars(obj).items():
            if not member.startswith("_") and (inspect.isfunction(value) or isinstance(value, (property, classmethod))):
                members.append(f"{name}.{member}")
    return members


@pytest.mark.parametrize("path", _public_members())
def test_public_methods_and_properties_have_docstrings(path: str) -> None:
    cls_name, member = path.split(".")
    value = vars(getattr(strato, cls_name))[member]
    target = value.fget if isinstance(value, property) else value.__func__ if isinstance(value, classmethod) else value
    assert (target.__doc__ or "").strip(), f"strato.{path} has no docstring"
