"""Feast 0.67's own client, unchanged, against a real `strato serve`.

Feast cannot live in Strato's environment (its pins clash with Strato's), so it gets a
virtualenv of its own in a cache outside the repo (`FEAST_VENV`), made once with the repo's
pinned uv and reused by every later run; where it cannot be installed (no network, no uv),
the test skips and says why. The Feast side runs `feast_client.py` in that venv: a Feast repo
with ``online_store: {type: remote, path: URL}`` calling `get_online_features` (a feature
list, a feature service, full feature names) and `write_to_online_store`. One server and one
Feast run serve every assertion here, so the module costs one Feast start-up (~10 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from server.conftest import Server, make_repo, start_server

pytestmark = pytest.mark.feast

FEAST_SPEC = "feast==0.67.*"
FEAST_VENV = Path(os.environ.get("STRATO_FEAST_VENV", Path.home() / ".cache" / "strato" / "feast-0.67"))
_ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(__file__).with_name("feast_client.py")


_READY = ".strato-ready"  # written once `import feast` worked in the venv: later runs skip that check


def _works(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not python.exists():
        return False
    if (venv / _READY).exists():
        return True
    done = subprocess.run([str(python), "-c", "import feast"], capture_output=True, timeout=300, check=False)
    if done.returncode != 0:
        return False
    (venv / _READY).touch()
    return True


def feast_python() -> Path:
    """The Feast venv's interpreter, installing the venv first when it is missing."""
    python = FEAST_VENV / "bin" / "python"
    if _works(FEAST_VENV):
        return python
    uv = _ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.skip(f"no pinned uv at {uv} to install {FEAST_SPEC} with: run `make lint` first")
    # Built beside the cache and renamed into place: a half-made venv is never taken for one.
    building = FEAST_VENV.with_name(f"{FEAST_VENV.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    steps = [
        [str(uv), "venv", "--quiet", "--python", sys.executable, str(building)],
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(building / "bin" / "python"),
            FEAST_SPEC,
        ],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600, env=env, check=False)
        except subprocess.TimeoutExpired:
            shutil.rmtree(building, ignore_errors=True)
            pytest.skip(f"installing {FEAST_SPEC} into {FEAST_VENV} took over 10 minutes")
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            reason = " ".join((done.stderr or done.stdout).split())[-400:]
            pytest.skip(f"cannot install {FEAST_SPEC} into {FEAST_VENV}: {reason}")
    if not _works(building):
        reason = f"{FEAST_SPEC} installed into {building} but `import feast` fails there"
        shutil.rmtree(building, ignore_errors=True)
        pytest.skip(reason)
    if _works(FEAST_VENV):
        shutil.rmtree(building, ignore_errors=True)  # another session finished first
    else:
        shutil.rmtree(FEAST_VENV, ignore_errors=True)
        building.rename(FEAST_VENV)
    if not _works(FEAST_VENV):
        pytest.skip(f"{FEAST_SPEC} installed into {FEAST_VENV} but `import feast` fails there")
    return python


@pytest.fixture(scope="module")
def feast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    repo = make_repo(tmp_path_factory.mktemp("feast_served"))
    server = start_server(repo)
    yield server, repo
    server.stop()


@pytest.fixture(scope="module")
def seen(feast_server: tuple[Server, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What Feast's client got back from each call (see `feast_client.py`)."""
    python = feast_python()
    server, _ = feast_server
    where = tmp_path_factory.mktemp("feast_repo")
    done = subprocess.run(
        [str(python), str(_SCRIPT), server.url, str(where)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stderr[-4000:]}\nserver log:\n{server.log.read_text()[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_features_list_values_types_statuses_and_order(seen: dict[str, Any]) -> None:
    got = seen["features"]
    # Join keys first, then the features grouped by view in the order asked (as Feast's server does).
    assert got["order"] == ["user_id", "tag", "score", "x", "amount"]
    assert got["values"] == {
        "user_id": [1, 2, 999],
        "tag": ["a", "b", None],
        "score": [8.0, None, None],
        "x": [7, 3, None],
        "amount": [None, 2.0, None],
    }
    # Feast rebuilds types from the JSON: a Float64 8.0 must stay a float, an Int64 an int.
    assert got["types"]["score"][0] == "float"
    assert got["types"]["amount"][1] == "float"
    assert got["types"]["x"][:2] == ["int", "int"]
    assert got["statuses"] == {
        "user_id": ["PRESENT"] * 3,
        "tag": ["PRESENT", "PRESENT", "NOT_FOUND"],
        "score": ["PRESENT", "NULL_VALUE", "NOT_FOUND"],
        "x": ["PRESENT", "PRESENT", "NOT_FOUND"],
        "amount": ["OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"],  # Strato's EXPIRED, in Feast's words
    }


def test_feature_service(seen: dict[str, Any]) -> None:
    got = seen["service"]
    assert got["order"] == ["user_id", "x", "score", "tag"]
    assert got["values"] == {"user_id": [1], "x": [7], "score": [8.0], "tag": ["a"]}
    assert got["types"]["score"] == ["float"]
    assert {s for statuses in got["statuses"].values() for s in statuses} == {"PRESENT"}


def test_full_feature_names(seen: dict[str, Any]) -> None:
    assert seen["full_names"]["order"] == ["user_id", "stats__x"]
    assert seen["full_names"]["values"] == {"user_id": [1], "stats__x": [7]}


def test_write_to_online_store_through_the_remote_store(
    seen: dict[str, Any], feast_server: tuple[Server, Path]
) -> None:
    got = seen["after_write"]
    assert got["values"] == {"user_id": [500, 501], "x": [41, 42], "score": [3.0, 0.5], "tag": ["w1", "w2"]}
    assert got["types"]["score"] == ["float", "float"]  # written as 3.0, read back as 3.0
    assert {s for statuses in got["statuses"].values() for s in statuses} == {"PRESENT"}
    # Feast sends naive UTC times and a `created` column: the event time lands as written.
    server, _ = feast_server
    with server.client() as client:
        r = client.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [500]}})
    stamp = r.json()["results"][1]["event_timestamps"][0]
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) == datetime.fromisoformat(seen["written_at"])
