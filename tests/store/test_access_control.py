"""Access control in the SDK: every role x verb x object, each denial audited, tokens kept secret.

A real repo (SQLite registry, Delta, LMDB) with access control on; one `FeatureStore` per token.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from access_matrix import GRANTEES, ON_DEMAND_NEEDS, Grantee, add_on_demand, enable_with_tokens, first_refused
from server.conftest import NOW, RECENT, SERVICE, STATS, make_repo
from strato import FeatureStore
from strato.access import REFRESH_SECONDS, admin
from strato.errors import AccessDeniedError, AuthenticationError, UserError

Verb = Callable[[FeatureStore], Any]


def _rows(view: str) -> list[dict[str, Any]]:
    if view == "stats":
        return [{"user_id": 9, "event_timestamp": NOW, "x": 1, "score": 1.0, "tag": "z"}]
    return [{"user_id": 9, "event_timestamp": NOW, "amount": 3.0}]


_SPINE = [{"user_id": 1, "event_timestamp": NOW + timedelta(seconds=1)}]
_END = NOW + timedelta(seconds=1)
_described = iter(range(10_000))


def _doubled(result: dict[str, list[Any]]) -> None:
    assert result["double_x"] == [14], result  # stats:x is 7 for user 1


def _apply_stats(store: FeatureStore) -> Any:
    return store.apply([dataclasses.replace(STATS, description=f"take {next(_described)}")])


#: name → (verb, action, object kind, object name)
VERBS: dict[str, tuple[Verb, str, str, str]] = {
    "get_online_features[stats]": (
        lambda s: s.get_online_features(["stats:x"], [{"user_id": 1}]),
        "read",
        "feature_view",
        "stats",
    ),
    "get_online_features[recent]": (
        lambda s: s.get_online_features(["recent:amount"], [{"user_id": 1}]),
        "read",
        "feature_view",
        "recent",
    ),
    "get_online_features[svc]": (
        lambda s: s.get_online_features(SERVICE, [{"user_id": 1}]),
        "read",
        "feature_service",
        "svc",
    ),
    "get_online_features[doubled]": (
        lambda s: _doubled(s.get_online_features(["doubled:double_x"], [{"user_id": 1}]).to_dict()),
        "read",
        "feature_view",
        "doubled",
    ),
    "get_historical_features[doubled]": (
        lambda s: _doubled(s.get_historical_features(_SPINE, ["doubled:double_x"]).to_arrow().to_pydict()),
        "read",
        "feature_view",
        "doubled",
    ),
    "list_on_demand_feature_views": (
        lambda s: [v.name for v in s.list_on_demand_feature_views()] == ["doubled"] or pytest.fail("not listed"),
        "list",
        "project",
        "proj",
    ),
    "get_historical_features[stats]": (
        lambda s: s.get_historical_features(_SPINE, ["stats:x"]),
        "read",
        "feature_view",
        "stats",
    ),
    "get_historical_features[svc]": (
        lambda s: s.get_historical_features(_SPINE, SERVICE),
        "read",
        "feature_service",
        "svc",
    ),
    "get_feature_view[recent]": (lambda s: s.get_feature_view("recent"), "read", "feature_view", "recent"),
    "sql": (lambda s: s.sql("select count(*) as n from stats"), "read", "project", "proj"),
    "list_feature_views": (lambda s: s.list_feature_views(), "list", "project", "proj"),
    "write[stats]": (lambda s: s.write("stats", _rows("stats")), "write", "feature_view", "stats"),
    "write[recent]": (lambda s: s.write("recent", _rows("recent")), "write", "feature_view", "recent"),
    "push[stats]": (lambda s: s.push("stats", _rows("stats")), "write", "feature_view", "stats"),
    "materialize[stats]": (
        lambda s: s.materialize(None, _END, views=["stats"], progress=False),
        "write",
        "feature_view",
        "stats",
    ),
    "prune_expired[recent]": (lambda s: s.prune_expired(["recent"]), "write", "feature_view", "recent"),
    "apply[stats]": (_apply_stats, "apply", "feature_view", "stats"),
    "apply[new entity-level]": (
        lambda s: s.apply([RECENT, dataclasses.replace(RECENT, name=f"r{next(_described)}")]),
        "apply",
        "project",
        "proj",
    ),
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    repo = make_repo(tmp_path_factory.mktemp("secured"))
    add_on_demand(repo)
    admin_token, tokens = enable_with_tokens(repo)
    return repo, admin_token, tokens


@pytest.fixture(scope="module")
def stores(secured: tuple[Path, str, dict[str, str]]) -> Iterator[dict[str, FeatureStore]]:
    repo, _, tokens = secured
    opened = {gid: FeatureStore(repo, token=text) for gid, text in tokens.items()}
    yield opened
    for store in opened.values():
        store.close()


@pytest.fixture(scope="module")
def admin_store(secured: tuple[Path, str, dict[str, str]]) -> Iterator[FeatureStore]:
    repo, admin_token, _ = secured
    with FeatureStore(repo, token=admin_token) as store:
        yield store


@pytest.mark.parametrize("verb", list(VERBS))
@pytest.mark.parametrize("grantee", GRANTEES, ids=lambda g: g.id)
def test_matrix(grantee: Grantee, verb: str, stores: dict[str, FeatureStore], admin_store: FeatureStore) -> None:
    """Each role x scope x verb is allowed exactly when the documented rules say; a denial
    names the action and object and leaves an audit record naming the token."""
    call, action, kind, name = VERBS[verb]
    if verb == "apply[new entity-level]":
        # Adding a new view is an apply on that view: only a project grant can cover an object
        # that did not exist when the token was made.
        kind, name = "feature_view", "a new view"
    store = stores[grantee.id]
    # Reading an on-demand view needs read on it and on each view it reads from.
    objects = ON_DEMAND_NEEDS if (kind, name) == ("feature_view", "doubled") else ((kind, name),)
    refused = first_refused(grantee, action, objects)
    if refused is None:
        call(store)
        return
    with pytest.raises(AccessDeniedError) as denied:
        call(store)
    message = str(denied.value)
    assert action in message, message
    assert grantee.id in message, message
    assert f"{refused[1]}'" in message or verb.startswith("apply[new"), message
    [record] = admin.audit(admin_store.access, denied_only=True, limit=1)
    assert (record.allowed, record.action, record.via) == (False, action, "sdk")
    assert record.principal.startswith(grantee.id)
    assert record.reason


def test_access_off_needs_no_token(tmp_path: Path) -> None:
    """The embedded single-user default: until `strato access enable`, no token, no checks."""
    repo = make_repo(tmp_path)
    with FeatureStore(repo) as store:
        assert not store.access.access.enabled
        assert store.get_online_features(["stats:x"], [{"user_id": 1}]).to_dict()["x"] == [7]
        store.write("stats", _rows("stats"))
        assert store.registry.audit() == []  # nothing to audit while access control is off
        with pytest.raises(UserError, match="access control is off"):
            admin.create_token(store.access, "reader", name="n", created_by="t")


def test_no_token_and_bad_tokens_are_refused_and_audited(secured: tuple[Path, str, dict[str, str]]) -> None:
    repo, admin_token, tokens = secured
    good = tokens["reader@project"]
    token_id = good.split("_")[1]
    cases = {
        None: "needs a token",
        "garbage": "malformed",
        good[:-1] + ("A" if good[-1] != "A" else "B"): f"token {token_id} is not valid",
        "strato_000000000000_" + "x" * 43: "token 000000000000 is not valid",
    }
    for token, message in cases.items():
        with FeatureStore(repo, token=token) as store, pytest.raises(AuthenticationError, match=message) as refused:
            store.get_online_features(["stats:x"], [{"user_id": 1}])
        if token:
            assert token not in str(refused.value)
    with FeatureStore(repo, token=admin_token) as store:
        records = admin.audit(store.access, denied_only=True, limit=4)
    assert [r.reason for r in records] == [
        "unknown token or wrong secret",
        "unknown token or wrong secret",
        "malformed token",
        "no token",
    ]
    assert all(r.action == "read" and "stats" in r.object for r in records)


def test_a_token_from_strato_token_is_used(
    secured: tuple[Path, str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _, tokens = secured
    monkeypatch.setenv("STRATO_TOKEN", tokens["reader@feature_view:stats"])
    with FeatureStore(repo) as store:
        store.get_online_features(["stats:x"], [{"user_id": 1}])
        with pytest.raises(AccessDeniedError, match="write on feature view 'stats' needs role writer"):
            store.write("stats", _rows("stats"))


def test_a_revoked_token_is_refused_by_running_stores(secured: tuple[Path, str, dict[str, str]]) -> None:
    repo, admin_token, _ = secured
    with FeatureStore(repo, token=admin_token) as boss:
        made = admin.create_token(boss.access, "reader", name="soon revoked", created_by="t")
        with FeatureStore(repo, token=made.text) as user:
            user.get_online_features(["stats:x"], [{"user_id": 1}])
            admin.revoke(boss.access, made.id)
            time.sleep(REFRESH_SECONDS + 0.1)  # a running store re-reads its token this often
            with pytest.raises(AuthenticationError, match=f"token {made.id} \\(soon revoked\\) was revoked"):
                user.get_online_features(["stats:x"], [{"user_id": 1}])
        with FeatureStore(repo, token=made.text) as fresh, pytest.raises(AuthenticationError, match="revoked"):
            fresh.list_feature_views()
        [record] = admin.audit(boss.access, denied_only=True, limit=1)
        assert (record.reason, record.principal) == ("revoked token", f"soon revoked ({made.id})")
        with pytest.raises(UserError, match="already revoked"):
            admin.revoke(boss.access, made.id)


def test_token_management_needs_admin(secured: tuple[Path, str, dict[str, str]]) -> None:
    repo, _, tokens = secured
    for gid in ("writer@project", "admin@feature_view:stats"):
        with FeatureStore(repo, token=tokens[gid]) as store:
            with pytest.raises(AccessDeniedError, match="admin on project 'proj' needs role admin"):
                admin.create_token(store.access, "admin", name="escalate", created_by="t")
            with pytest.raises(AccessDeniedError):
                admin.list_tokens(store.access)
            with pytest.raises(AccessDeniedError):
                admin.audit(store.access)
            with pytest.raises(AccessDeniedError):
                admin.disable(store.access)


def test_allowed_actions_are_audited(secured: tuple[Path, str, dict[str, str]]) -> None:
    """Writes one row each at once; reads counted per token and object, written at refresh."""
    repo, admin_token, tokens = secured
    with FeatureStore(repo, token=tokens["writer@feature_view:stats"]) as store:
        for _ in range(3):
            store.get_online_features(["stats:x"], [{"user_id": 1}])
        store.write("stats", _rows("stats"))
    with FeatureStore(repo, token=admin_token) as boss:
        records = admin.audit(boss.access, limit=10)
    mine = [r for r in records if r.principal.startswith("writer@feature_view:stats")]
    assert ("write", "feature view 'stats'", True, 1) in [(r.action, r.object, r.allowed, r.count) for r in mine]
    assert ("read", "feature view 'stats'", True, 3) in [(r.action, r.object, r.allowed, r.count) for r in mine]


def test_secrets_are_never_stored_or_logged(
    secured: tuple[Path, str, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    repo, admin_token, tokens = secured
    caplog.set_level(logging.DEBUG)
    with FeatureStore(repo, token=admin_token) as boss:
        made = admin.create_token(boss.access, "reader", name="secret check", created_by="t")
        assert made.text not in repr(made)
        with FeatureStore(repo, token=made.text) as user:
            user.get_online_features(["stats:x"], [{"user_id": 1}])
        rows = {t.id: t for t in admin.list_tokens(boss.access)}
    raw = b"".join(p.read_bytes() for p in (repo / ".strato").glob("registry.db*"))
    for text in [admin_token, made.text, *tokens.values()]:
        secret = text.split("_", 2)[2]
        assert secret.encode() not in raw
        assert secret not in caplog.text
    assert rows[made.id].secret_sha256.encode() in raw  # what is stored instead


def test_online_reads_add_no_registry_round_trip(secured: tuple[Path, str, dict[str, str]]) -> None:
    """Between refreshes, a checked `get_online_features` touches no database: the decision is cached."""
    repo, _, tokens = secured
    with FeatureStore(repo, token=tokens["reader@feature_view:stats"]) as store:
        features, rows = ["stats:x"], [{"user_id": 1}]
        store.get_online_features(features, rows)  # resolves the token, fills the caches
        registry = store.registry
        calls: list[str] = []
        for name in ("access_enabled", "token", "tokens", "record_audit", "revision"):
            original = getattr(registry, name)
            setattr(registry, name, lambda *a, _n=name, _o=original, **k: (calls.append(_n), _o(*a, **k))[1])
        store.access.access._valid_until = time.monotonic() + 60  # no refresh during the loop
        store.catalog.valid_until = time.monotonic() + 60
        for _ in range(200):
            store.get_online_features(features, rows)
        assert calls == []


def test_a_service_with_an_on_demand_view_is_granted_as_the_service(
    secured: tuple[Path, str, dict[str, str]],
) -> None:
    """Through a service, a token needs the service only, on-demand views in it included:
    online and offline alike (their inputs are read for it, not checked one by one)."""
    from strato import FeatureService

    repo, admin_token, _ = secured
    with FeatureStore(repo, token=admin_token) as boss:
        [doubled] = boss.list_on_demand_feature_views()
        boss.apply([FeatureService("doubling", [doubled])])
        made = admin.create_token(boss.access, "reader", name="doubling only", created_by="t", service="doubling")
    with FeatureStore(repo, token=made.text) as store:
        service = store.get_feature_service("doubling")
        assert store.get_online_features(service, [{"user_id": 1}]).to_dict()["double_x"] == [14]
        assert store.get_historical_features(_SPINE, service).to_arrow().column("double_x").to_pylist() == [14]
        with pytest.raises(AccessDeniedError, match="read on feature view 'doubled'"):
            store.get_online_features(["doubled:double_x"], [{"user_id": 1}])
