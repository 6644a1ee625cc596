"""`strato doctor` as users run it (issue 10 item 5): the installed script in a subprocess,
one line per check, exit 0 when all pass and 1 otherwise, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

from e2e.conftest import Run, run


def lines(result: Run) -> list[str]:
    assert "Traceback" not in result.out + result.err, str(result)
    return result.out.strip("\n").splitlines()


def checks(result: Run) -> dict[str, str]:
    """check name → its line, for the lines that are checks (✔/✘), each exactly one line."""
    found = {}
    for line in lines(result):
        if line[:2] in ("✔ ", "✘ "):
            name = line[2:].split(":", 1)[0]
            found[name] = line
    return found


def test_doctor_passes_on_a_fresh_applied_repo(tmp_path: Path) -> None:
    assert run("init", "repo", cwd=tmp_path).code == 0
    assert run("apply", "-r", "repo", cwd=tmp_path).code == 0
    result = run("doctor", "-r", "repo", cwd=tmp_path)
    assert result.code == 0, str(result)
    found = checks(result)
    assert list(found) == ["config", "registry", "online", "offline", "view user_stats", "versions"], str(result)
    assert all(line.startswith("✔ ") for line in found.values()), str(result)
    assert len(lines(result)) == len(found), str(result)  # nothing but the checks
    assert "--repo" in run("doctor", "--help", cwd=tmp_path).out


def test_doctor_before_apply_fails_the_registry_check_and_creates_nothing(tmp_path: Path) -> None:
    assert run("init", "repo", cwd=tmp_path).code == 0
    result = run("doctor", "-r", "repo", cwd=tmp_path)
    assert result.code == 1, str(result)
    found = checks(result)
    assert found["registry"].startswith("✘ "), str(result)
    assert "registry.db" in found["registry"]
    assert "run `strato apply` first" in found["registry"]
    assert found["online"].startswith("✔ ")
    assert lines(result)[-1] == "1 of 5 checks failed"
    assert not (tmp_path / "repo" / ".strato" / "registry.db").exists()


def test_doctor_names_an_unreachable_redis(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run("init", "repo", cwd=tmp_path).code == 0
    assert run("apply", "-r", "repo", cwd=tmp_path).code == 0
    config = tmp_path / "repo" / "strato.yaml"
    config.write_text(
        config.read_text().split("online:")[0] + f"online:\n  type: redis\n  url: redis://127.0.0.1:{port}/0\n"
    )
    result = run("doctor", "-r", "repo", cwd=tmp_path)
    assert result.code == 1, str(result)
    online = checks(result)["online"]
    assert online.startswith("✘ "), str(result)
    assert f"127.0.0.1:{port}" in online
    assert "BackendUnavailable" in online
    assert checks(result)["registry"].startswith("✔ ")


def test_doctor_on_a_damaged_strato_yaml_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "strato.yaml").write_text("project: [\n")
    result = run("doctor", cwd=tmp_path)
    assert result.code == 1, str(result)
    found = checks(result)
    assert list(found) == ["config", "versions"], str(result)
    assert found["config"].startswith("✘ config: ")
    assert "strato.yaml" in found["config"]
