"""The `server:` section of strato.yaml sets what `strato serve` does when its flags are left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.conftest import Server, make_repo, start_server
from strato.config import load_config
from strato.errors import ConfigError


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    repo = make_repo(tmp_path_factory.mktemp("configured"))
    config = repo / "strato.yaml"
    config.write_text(config.read_text() + "server:\n  max_batch_rows: 2\n  workers: 1\n")
    server = start_server(repo)  # --port from the command line: flags win over the section
    yield server
    server.stop()


def test_limits_come_from_the_server_section(configured: Server) -> None:
    with configured.client() as client:
        two = client.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [1, 2]}})
        three = client.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [1, 2, 3]}})
    assert two.status_code == 200, two.text
    assert three.status_code == 413, three.text
    assert "2" in three.json()["error"]


def test_the_section_is_validated_and_overridable_by_environment(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text("project: p\nserver:\n  port: 7000\n  host: 0.0.0.0\n")
    config = load_config(tmp_path, environ={"STRATO_SERVER__WORKERS": "3"})
    assert (config.server.host, config.server.port, config.server.workers) == ("0.0.0.0", 7000, 3)
    assert ("server.port", "7000", "strato.yaml") in config.describe()
    with pytest.raises(ConfigError, match=r"STRATO_SERVER__PORT: server.port: .*greater than or equal to 1"):
        load_config(tmp_path, environ={"STRATO_SERVER__PORT": "0"})
    with pytest.raises(ConfigError, match=r"server.prot: unknown option .*did you mean 'port'"):
        load_config(tmp_path, environ={"STRATO_SERVER__PROT": "1"})
    assert load_config(tmp_path, environ={}).server.max_batch_rows == 10_000  # the default
