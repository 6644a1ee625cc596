"""Every registered online backend is a faithful `OnlineStore`: same methods, same signatures.

The core reaches backends only through the `OnlineStore` interface (layout.md, import
rule 2), so a backend whose `write` took its arguments in another order, or that grew a
public method the core might start to depend on, is caught here rather than in production.
"""

from __future__ import annotations

import inspect

import pydantic
import pytest

from strato import plugins
from strato.online.base import Capabilities, OnlineStore, StoreOptions

from .conftest import BACKENDS, HARNESSES, MissingHarnessError, backend_params, load_harness


def public_methods(cls: type) -> list[str]:
    """Names of the public functions and classmethods of `cls` (not attributes such as `options_model`)."""
    members = inspect.getmembers(cls, lambda m: inspect.isfunction(m) or inspect.ismethod(m))
    return sorted(name for name, _ in members if not name.startswith("_"))


INTERFACE = public_methods(OnlineStore)


def test_interface_has_the_documented_methods() -> None:
    assert INTERFACE == [
        "check",
        "check_room",
        "close",
        "drop",
        "key_limit",
        "open",
        "prune",
        "read",
        "read_tables",
        "write",
        "write_if",
    ]


@pytest.mark.parametrize("name", backend_params())
def test_public_methods_match_the_interface(name: str) -> None:
    cls = plugins.load("online", name)
    assert issubclass(cls, OnlineStore)
    assert not inspect.isabstract(cls), f"{cls.__name__} leaves {sorted(cls.__abstractmethods__)} abstract"
    assert public_methods(cls) == INTERFACE, f"{cls.__name__} adds or hides public methods"
    for method in INTERFACE:
        expected = inspect.signature(getattr(OnlineStore, method), eval_str=True)
        actual = inspect.signature(getattr(cls, method), eval_str=True)
        assert actual == expected, f"{cls.__name__}.{method}{actual} differs from OnlineStore.{method}{expected}"
    assert isinstance(inspect.getattr_static(cls, "open"), classmethod)


@pytest.mark.parametrize("name", backend_params())
def test_class_attributes(name: str) -> None:
    cls = plugins.load("online", name)
    assert cls.name == name
    assert isinstance(cls.capabilities, Capabilities)
    assert cls.capabilities.max_batch_rows > 0
    assert issubclass(cls.options_model, StoreOptions)


@pytest.mark.parametrize("name", backend_params())
def test_options_are_documented_defaulted_and_strict(name: str) -> None:
    model = plugins.load("online", name).options_model
    for field_name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{field_name} needs a docstring: it is the user's documentation"
    model()  # the defaults alone make a working configuration (design.md: no server needed)
    with pytest.raises(pydantic.ValidationError, match="no_such_option"):
        model(no_such_option=1)


def test_every_registered_backend_has_a_harness() -> None:
    assert {"memory", "lmdb"} <= set(BACKENDS)
    assert set(HARNESSES) == set(BACKENDS)


def test_a_backend_without_a_harness_is_a_clear_error() -> None:
    with pytest.raises(
        MissingHarnessError, match=r"'no_such_engine' is registered .* create .*no_such_engine/harness\.py"
    ):
        load_harness("no_such_engine")
