"""``open(create=False)``: a read-only open creates nothing and says when there is no registry yet."""

from __future__ import annotations

import pytest
from registry_samples import USER, apply, view

from strato import plugins
from strato.errors import RegistryNotFoundError
from strato.registry.base import RegistryStore


def test_a_read_only_open_of_an_empty_database_is_registry_not_found(backend: str, registry_url: str) -> None:
    cls: type[RegistryStore] = plugins.load("registry", backend)
    with pytest.raises(RegistryNotFoundError, match=r"no registry at .* yet; run `strato apply` first"):
        cls.open(registry_url, project="p", create=False)
    # Nothing was created by the refused open: a second one is refused the same way.
    with pytest.raises(RegistryNotFoundError):
        cls.open(registry_url, project="p", create=False)


def test_a_read_only_open_sees_what_was_applied_and_nothing_of_unknown_projects(
    backend: str, registry_url: str
) -> None:
    cls: type[RegistryStore] = plugins.load("registry", backend)
    with cls.open(registry_url, project="p") as writer:
        apply(writer, [USER, view()])
    with cls.open(registry_url, project="p", create=False) as reader:
        assert [v.name for v in reader.list("feature_view")] == ["user_stats"]
        assert reader.revision() == 1
    with cls.open(registry_url, project="other", create=False) as stranger:
        assert stranger.current() == {}
        assert stranger.revision() == 0
