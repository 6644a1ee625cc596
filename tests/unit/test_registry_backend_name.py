"""`backend_name`: the `registry:` URL's scheme picks the registry backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato import FeatureStore
from strato.errors import PluginNotFoundError
from strato.registry.base import backend_name


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        (".strato/registry.db", "sqlite"),
        ("/abs/registry.db", "sqlite"),
        ("sqlite:////abs/registry.db", "sqlite"),
        ("postgresql://u@db.internal:5432/features", "postgresql"),
        ("postgresql+psycopg://u@host/db", "postgresql"),
        ("postgres://u@host/db", "postgresql"),
        ("PostgreSQL://u@host/db", "postgresql"),
    ],
)
def test_the_url_scheme_names_the_backend(url: str, backend: str) -> None:
    assert backend_name(url) == backend


def test_a_scheme_no_backend_is_registered_for_is_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text("project: p\nregistry: mysql://u@host/db\n")
    with pytest.raises(PluginNotFoundError, match=r"no registry backend named 'mysql'; registered: postgresql, sqlite"):
        FeatureStore(tmp_path)
