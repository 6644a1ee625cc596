"""On-demand views behind a real `strato serve` process: the definitions are applied with
`strato apply` from the repo's ``features.py``, and the server finds each function by
importing that module (checking its fingerprint); request fields travel in ``entities``,
as Feast clients send them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from server.conftest import Server, start_server
from strato import FeatureStore
from strato.config import write_default_config

FEATURES = textwrap.dedent(
    """
    import pandas as pd

    from strato import (
        Entity, FeatureService, FeatureView, Field, Float64, Int64, RequestSource, on_demand_feature_view,
    )

    user = Entity("user", join_keys={"user_id": Int64})
    stats = FeatureView("stats", entities=[user], schema=[Field("x", Int64), Field("score", Float64)])
    txn = RequestSource("txn", schema=[Field("amount", Float64)])


    @on_demand_feature_view(sources=[stats, txn], schema=[Field("ratio", Float64)], mode="pandas")
    def amount_ratio(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"ratio": df["amount"] / df["score"]})


    @on_demand_feature_view(sources=[stats, txn], schema=[Field("per_x", Float64)], mode="python", singleton=True)
    def per_x(row):
        return {"per_x": row["amount"] / row["x"]}


    scoring = FeatureService("scoring", [stats[["x"]], amount_ratio])
    """
)
NOW = datetime.now(UTC).replace(microsecond=0)


def _strato(*args: str) -> subprocess.CompletedProcess[str]:
    strato = Path(sys.executable).parent / "strato"
    return subprocess.run([str(strato), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def odfv_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("odfv_repo")
    write_default_config(repo, "proj")
    (repo / "features.py").write_text(FEATURES)
    done = _strato("apply", "--repo", str(repo))
    assert done.returncode == 0, done.stdout + done.stderr
    with FeatureStore(repo) as store:
        store.write(
            "stats",
            [
                {"user_id": 1, "event_timestamp": NOW, "x": 2, "score": 4.0},
                {"user_id": 2, "event_timestamp": NOW, "x": 0, "score": 8.0},
            ],
        )
    return repo


@pytest.fixture(scope="module")
def odfv_server(odfv_repo: Path) -> Iterator[Server]:
    s = start_server(odfv_repo)
    yield s
    s.stop()


@pytest.fixture
def http(odfv_server: Server) -> Iterator[httpx.Client]:
    with odfv_server.client() as c:
        yield c


def test_server_computes_on_demand_features_from_request_fields(http: httpx.Client, odfv_repo: Path) -> None:
    body = {"features": ["stats:x", "amount_ratio:ratio"], "entities": {"user_id": [1, 2], "amount": [10.0, 4.0]}}
    r = http.post("/get-online-features", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["metadata"]["feature_names"] == ["user_id", "x", "ratio"]
    assert [res["values"] for res in data["results"]] == [[1, 2], [2, 0], [2.5, 0.5]]
    assert data["results"][2]["statuses"] == ["PRESENT", "PRESENT"]
    # The same answer in process, where the function is found by importing features.py too.
    with FeatureStore(odfv_repo) as store:
        local = store.get_online_features(["stats:x", "amount_ratio:ratio"], [{"user_id": 1, "amount": 10.0}])
        assert local.to_dict() == {"user_id": [1], "x": [2], "ratio": [2.5]}


def test_feature_service_with_an_on_demand_view(http: httpx.Client) -> None:
    body = {"feature_service": "scoring", "entities": {"user_id": [1], "amount": [2.0]}}
    r = http.post("/get-online-features", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["feature_names"] == ["user_id", "x", "ratio"]
    assert [res["values"] for res in r.json()["results"]] == [[1], [2], [0.5]]


def test_errors_name_the_view_or_the_field_and_the_server_keeps_serving(http: httpx.Client) -> None:
    r = http.post(
        "/get-online-features", json={"features": ["per_x:per_x"], "entities": {"user_id": [2], "amount": [1.0]}}
    )
    assert r.status_code == 500
    assert "on-demand feature view 'per_x'" in r.json()["error"]
    assert "ZeroDivisionError" in r.json()["error"]
    assert "Traceback" not in r.text
    r = http.post("/get-online-features", json={"features": ["per_x:per_x"], "entities": {"user_id": [1]}})
    assert r.status_code == 400
    assert "missing request field 'amount'" in r.json()["error"]
    r = http.post(
        "/get-online-features", json={"features": ["per_x:per_x"], "entities": {"user_id": [1], "amount": [3.0]}}
    )
    assert r.status_code == 200
    assert r.json()["results"][1]["values"] == [1.5]


def test_a_server_never_runs_code_other_than_the_applied(odfv_repo: Path, tmp_path: Path) -> None:
    """Edited after `apply`, the function's fingerprint no longer matches: refused, named."""
    copy = tmp_path / "copy"
    shutil.copytree(odfv_repo, copy, ignore=shutil.ignore_patterns("serve-*.log"))
    (copy / "features.py").write_text(FEATURES.replace('df["amount"] / df["score"]', 'df["amount"] * 100'))
    server = start_server(copy)
    try:
        with server.client() as c:
            body = {"features": ["amount_ratio:ratio"], "entities": {"user_id": [1], "amount": [1.0]}}
            r = c.post("/get-online-features", json=body)
            assert r.status_code == 500
            error = r.json()["error"]
            assert "on-demand feature view 'amount_ratio'" in error
            assert "cannot be found here" in error
            assert "fingerprint" in error
            # Views whose code did not change still serve.
            body = {"features": ["per_x:per_x"], "entities": {"user_id": [1], "amount": [1.0]}}
            assert c.post("/get-online-features", json=body).json()["results"][1]["values"] == [0.5]
    finally:
        server.stop()
