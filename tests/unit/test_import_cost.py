"""Start-up cost: what `import strato` and a one-key online lookup import.

`strato get` of one key took 2 s, much of it importing pandas for a one-row `to_dict()` and
DuckDB and deltalake that an online read never uses. Each check runs in a fresh interpreter,
since this test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, List, String
from strato.config import write_default_config

HEAVY = ("pandas", "duckdb", "deltalake")


def _loaded_after(code: str, cwd: Path) -> dict[str, bool]:
    """Run `code` in a fresh interpreter; which of HEAVY are in sys.modules afterwards."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
        """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("repo")
    write_default_config(path, "imports")
    user = Entity("user", join_keys={"user_id": Int64})
    view = FeatureView(
        "user_stats",
        entities=[user],
        schema=[Field("amount", Float64), Field("country", String), Field("recent", List(Int64))],
    )
    with FeatureStore(path) as store:
        store.apply([user, view])
        store.write(
            "user_stats",
            [{"user_id": 7, "event_timestamp": datetime.now(UTC), "amount": 1.5, "country": "DE", "recent": [1]}],
        )
    return path


def test_import_strato_imports_no_heavy_engine(tmp_path: Path) -> None:
    assert _loaded_after("import strato", tmp_path) == dict.fromkeys(HEAVY, False)


def test_a_one_key_lookup_with_to_dict_imports_no_pandas_duckdb_or_deltalake(repo: Path) -> None:
    loaded = _loaded_after(
        """
        from strato import FeatureStore
        with FeatureStore(".") as store:
            got = store.get_online_features(
                ["user_stats:amount", "user_stats:country", "user_stats:recent"], [{"user_id": 7}]
            ).to_dict()
        assert got == {"user_id": [7], "amount": [1.5], "country": ["DE"], "recent": [[1]]}, got
        """,
        repo,
    )
    assert loaded == dict.fromkeys(HEAVY, False)


def test_strato_get_of_one_key_imports_no_pandas_duckdb_or_deltalake(repo: Path) -> None:
    """The CLI command itself, run in-process in the fresh interpreter (statuses and table too)."""
    loaded = _loaded_after(
        """
        from strato.cli.main import app
        try:
            app(["get", "user_stats:amount", "user_stats:country", "--entity", "user_id=7"])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """,
        repo,
    )
    assert loaded == dict.fromkeys(HEAVY, False)
