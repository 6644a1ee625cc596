"""Access control over HTTP, against a real `strato serve` (2 workers) with tokens required.

Every role x endpoint x object, with the expected answer from the same hand-written rules as
the SDK's matrix (`tests/access_matrix.py`); 401 and 403 each leave an audit record; a client
that keeps failing is slowed down (429); tokens never reach the server's log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from access_matrix import GRANTEES, ON_DEMAND_NEEDS, Grantee, add_on_demand, enable_with_tokens, first_refused
from server.conftest import Server, free_port, make_repo, start_server
from strato import FeatureStore
from strato.access import REFRESH_SECONDS, admin
from strato.server.auth import FREE_FAILURES


@dataclass(frozen=True)
class Secured:
    repo: Path
    admin: str
    tokens: dict[str, str]
    server: Server


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    repo = make_repo(tmp_path_factory.mktemp("secured_http"))
    add_on_demand(repo)
    admin_token, tokens = enable_with_tokens(repo)
    server = start_server(repo, "--workers", "2")  # no --no-auth: tokens required
    yield Secured(repo, admin_token, tokens, server)
    server.stop()


def _now() -> str:
    return datetime.now(UTC).isoformat()


#: name → (method, path, body, action, object kind, object name)
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any] | None, str, str, str]] = {
    "get-online-features[stats]": (
        "POST",
        "/get-online-features",
        {"features": ["stats:x"], "entities": {"user_id": [1]}},
        "read",
        "feature_view",
        "stats",
    ),
    "get-online-features[recent]": (
        "POST",
        "/get-online-features",
        {"features": ["recent:amount"], "entities": {"user_id": [1]}},
        "read",
        "feature_view",
        "recent",
    ),
    "get-online-features[svc]": (
        "POST",
        "/get-online-features",
        {"feature_service": "svc", "entities": {"user_id": [1]}},
        "read",
        "feature_service",
        "svc",
    ),
    "get-online-features[doubled]": (
        "POST",
        "/get-online-features",
        {"features": ["doubled:double_x"], "entities": {"user_id": [1]}},
        "read",
        "feature_view",
        "doubled",
    ),
    "push[stats]": (
        "POST",
        "/push",
        {"push_source_name": "stats", "df": {"user_id": [9], "x": [1], "score": [1.0], "tag": ["z"]}, "to": "online"},
        "write",
        "feature_view",
        "stats",
    ),
    "write-to-online-store[recent]": (
        "POST",
        "/write-to-online-store",
        {"feature_view_name": "recent", "df": {"user_id": [9], "amount": [2.0]}},
        "write",
        "feature_view",
        "recent",
    ),
    "list/feature-views": ("GET", "/list/feature-views", None, "list", "project", "proj"),
    "list/entities": ("GET", "/list/entities", None, "list", "project", "proj"),
    "list/on-demand-feature-views": ("GET", "/list/on-demand-feature-views", None, "list", "project", "proj"),
    "metrics": ("GET", "/metrics", None, "read", "project", "proj"),
}


def _request(server: Server, endpoint: str, token: str | None) -> httpx.Response:
    method, path, body, *_ = ENDPOINTS[endpoint]
    if body is not None and "df" in body:
        body = {**body, "df": {**body["df"], "event_timestamp": [_now()]}}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client() as client:
        return client.request(method, path, json=body, headers=headers)


def _denials(secured: Secured) -> list[Any]:
    with FeatureStore(secured.repo, token=secured.admin) as store:
        return [r for r in admin.audit(store.access, denied_only=True, limit=10_000) if r.via == "http"]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("grantee", GRANTEES, ids=lambda g: g.id)
def test_matrix(grantee: Grantee, endpoint: str, secured: Secured) -> None:
    *_, action, kind, name = ENDPOINTS[endpoint]
    before = len(_denials(secured))
    r = _request(secured.server, endpoint, secured.tokens[grantee.id])
    # Reading an on-demand view needs read on it and on each view it reads from, as in the SDK.
    objects = ON_DEMAND_NEEDS if (kind, name) == ("feature_view", "doubled") else ((kind, name),)
    refused = first_refused(grantee, action, objects)
    if refused is None:
        assert r.status_code == 200, r.text
        assert len(_denials(secured)) == before
        if name == "doubled":
            assert r.json()["results"][1]["values"] == [14]
        if endpoint == "list/on-demand-feature-views":
            assert [v["name"] for v in r.json()["on_demand_feature_views"]] == ["doubled"]
        return
    assert r.status_code == 403, r.text
    message = r.json()["error"]
    assert action in message, message
    assert f"{refused[1]}'" in message, message
    assert grantee.id in message, message
    records = _denials(secured)
    assert len(records) == before + 1
    record = records[0]
    assert (record.allowed, record.action, record.client) == (False, action, "127.0.0.1")
    assert record.principal.startswith(grantee.id)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_no_token_is_401_and_audited(endpoint: str, secured: Secured) -> None:
    before = len(_denials(secured))
    r = _request(secured.server, endpoint, None)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["error"]
    records = _denials(secured)
    assert len(records) == before + 1
    assert records[0].reason == "no token"
    # /health stays open: load balancers probe it without a token.
    with secured.server.client() as client:
        assert client.get("/health").status_code == 200


def test_a_revoked_token_is_refused(secured: Secured) -> None:
    with FeatureStore(secured.repo, token=secured.admin) as store:
        made = admin.create_token(store.access, "reader", name="short lived", created_by="t")
        assert _request(secured.server, "list/entities", made.text).status_code == 200
        admin.revoke(store.access, made.id)
    # Each worker re-reads its tokens within REFRESH_SECONDS, whichever answers.
    time.sleep(REFRESH_SECONDS + 0.5)
    statuses = [_request(secured.server, "list/entities", made.text).status_code for _ in range(4)]
    assert statuses == [401] * 4
    assert any(r.reason == "revoked token" and made.id in r.principal for r in _denials(secured))


def test_tokens_never_reach_the_log(secured: Secured) -> None:
    for text in [secured.admin, *secured.tokens.values()]:
        _request(secured.server, "list/entities", text)
        _request(secured.server, "list/entities", text[:-2] + "zz")
    log = secured.server.log.read_text()
    for text in [secured.admin, *secured.tokens.values()]:
        assert text.split("_", 2)[2] not in log


def test_repeated_failures_are_slowed_down(tmp_path: Path) -> None:
    """After FREE_FAILURES bad tokens a client is locked out (429), even with a good token,
    and the lockout itself is audited; a lockout runs out by itself."""
    repo = make_repo(tmp_path)
    admin_token, _ = enable_with_tokens(repo)
    server = start_server(repo, "--workers", "1")
    try:
        codes = [_request(server, "list/entities", "strato_aaaaaaaaaaaa_" + "b" * 43).status_code for _ in range(8)]
        assert codes[:FREE_FAILURES] == [401] * FREE_FAILURES
        assert 429 in codes[FREE_FAILURES:]
        locked = _request(server, "list/entities", admin_token)
        assert locked.status_code == 429, locked.text
        assert "retry in" in locked.json()["error"]
        with FeatureStore(repo, token=admin_token) as store:
            reasons = [r.reason for r in admin.audit(store.access, denied_only=True, limit=50)]
        assert any("locked out" in reason for reason in reasons)
    finally:
        server.stop()


def _serve(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    strato = Path(sys.executable).parent / "strato"
    return subprocess.run(
        [str(strato), "serve", "--repo", str(repo), "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    for host in ("0.0.0.0", "192.0.2.1", "example.com"):
        result = _serve(repo, "--host", host, "--no-auth")
        assert result.returncode == 1
        assert f"--no-auth: refused on {host}" in result.stderr


def test_auth_is_required_by_default(tmp_path: Path) -> None:
    """Access control off and no --no-auth: the server refuses to start, saying what to do."""
    result = _serve(make_repo(tmp_path))
    assert result.returncode == 1
    assert "access control is off for project 'proj'" in result.stderr
    assert "strato access enable" in result.stderr


def test_no_auth_on_loopback_serves_a_secured_project_without_tokens(tmp_path: Path) -> None:
    """--no-auth means the server checks nothing, even where the project has access control on;
    its own store does not ask for a token either (the server speaks for its clients)."""
    repo = make_repo(tmp_path)
    enable_with_tokens(repo)
    server = start_server(repo, "--no-auth")
    try:
        assert _request(server, "get-online-features[svc]", None).status_code == 200
        assert _request(server, "push[stats]", None).status_code == 200
    finally:
        server.stop()


def test_auth_false_in_the_server_section_is_refused_off_loopback(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    config = repo / "strato.yaml"
    config.write_text(config.read_text() + "server:\n  host: 0.0.0.0\n  auth: false\n")
    result = _serve(repo)
    assert result.returncode == 1
    assert "--no-auth: refused on 0.0.0.0" in result.stderr
