"""Reading versions back: latest, pinned, listed, and the errors for ones that do not exist."""

from __future__ import annotations

import pytest
from registry_samples import CARD, USER, OpenRegistry, apply, service, view

from strato.definitions.entity import Entity
from strato.definitions.feature_view import FeatureView
from strato.errors import NotFoundError, UserError
from strato.registry.base import RegistryStore


def _view(registry: RegistryStore, version: int | None = None) -> FeatureView:
    fv = registry.get("feature_view", "user_stats", version=version)
    assert isinstance(fv, FeatureView)
    return fv


def test_versions_count_every_change_and_storage_moves_only_on_new_versions(registry: RegistryStore) -> None:
    steps = [
        ((("a", "float64"),), ()),
        ((("a", "float64"), ("b", "float64")), ()),
        ((("a", "float64"), ("b", "float64"), ("c", "int64")), ()),
        ((("a", "float64"), ("c", "int64")), ("user_stats",)),
        ((("a", "float64"), ("c", "int64"), ("d", "bool")), ()),
    ]
    for fields, new_version in steps:
        apply(registry, [USER, view(*fields)], new_version=new_version)

    assert [(r.version, r.data_version) for r in registry.history("feature_view", "user_stats")] == [
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 4),
        (5, 4),
    ]
    for version, (fields, _) in enumerate(steps, start=1):
        fv = _view(registry, version)
        assert fv.version == version
        assert fv.feature_names == tuple(name for name, _ in fields)
    assert _view(registry) == _view(registry, 5)


def test_list_gives_the_latest_version_of_each_live_object_sorted_by_name(registry: RegistryStore) -> None:
    apply(registry, [USER, CARD, view(name="zeta"), view(name="alpha", entity=CARD)])
    apply(registry, [USER, view(("amount", "float64"), ("n", "int64"), name="zeta")])
    apply(registry, [USER, view(name="mid")])
    apply(registry, [], delete=[("feature_view", "mid")])

    views = registry.list("feature_view")

    assert [(v.name, v.version) for v in views if isinstance(v, FeatureView)] == [("alpha", 1), ("zeta", 2)]
    assert [e.name for e in registry.list("entity")] == ["card", "user"]
    assert registry.list("feature_service") == []


def test_a_version_that_does_not_exist_is_named_in_the_error(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])
    apply(registry, [USER, view(("amount", "float64"), ("n", "int64"))])

    with pytest.raises(NotFoundError, match=r"feature view 'user_stats' version 7 does not exist.*1, 2"):
        registry.get("feature_view", "user_stats", version=7)


def test_the_version_that_deleted_an_object_cannot_be_read(registry: RegistryStore) -> None:
    apply(registry, [USER, view()])
    apply(registry, [], delete=[("feature_view", "user_stats")])

    with pytest.raises(NotFoundError, match=r"'user_stats' was deleted \(version 2, by alice.*versions \(1\)"):
        registry.get("feature_view", "user_stats", version=2)
    apply(registry, [USER, view()])  # back as version 3: version 2 is now a deletion in the middle
    with pytest.raises(NotFoundError, match=r"version 2 does not exist \(that version is its deletion\).*1, 3"):
        registry.get("feature_view", "user_stats", version=2)


@pytest.mark.parametrize("version", [0, -1, True])
def test_versions_are_positive_integers(registry: RegistryStore, version: int) -> None:
    apply(registry, [USER])
    with pytest.raises(UserError, match="version must be a positive integer"):
        registry.get("entity", "user", version=version)


def test_an_unknown_name_suggests_close_ones(registry: RegistryStore) -> None:
    apply(registry, [USER, view(), service()])

    with pytest.raises(NotFoundError, match=r"feature view 'user_stat' does not exist; did you mean 'user_stats'\?"):
        registry.get("feature_view", "user_stat")
    with pytest.raises(NotFoundError, match=r"^feature service 'zzz' does not exist$"):
        registry.get("feature_service", "zzz")
    with pytest.raises(NotFoundError, match=r"entity 'usr' version 1 does not exist; did you mean 'user'"):
        registry.get("entity", "usr", version=1)


def test_an_unknown_kind_is_refused(registry: RegistryStore) -> None:
    with pytest.raises(UserError, match="unknown object kind 'view'"):
        registry.get("view", "user_stats")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown object kind"):
        registry.list("views")  # type: ignore[arg-type]


def test_an_old_version_reads_its_entities_as_they_were(registry: RegistryStore) -> None:
    """Entities are stored by name; an old view version must not pick up a later entity of that name."""
    apply(registry, [USER, view()])
    apply(registry, [], delete=[("feature_view", "user_stats")])
    apply(registry, [], delete=[("entity", "user")])
    apply(registry, [Entity("user", {"uid": "string"})])

    old = _view(registry, 1)

    assert old.join_key_names == ("user_id",)
    assert old.entities == (USER,)


def test_definitions_survive_reopening(open_registry: OpenRegistry) -> None:
    first = open_registry()
    apply(first, [USER, view(), service()])
    expected = first.current()
    first.close()

    again = open_registry()

    assert again.current() == expected
    assert again.get("feature_view", "user_stats", version=1) == expected[("feature_view", "user_stats")]
