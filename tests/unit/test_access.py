"""Pure parts of access control: the decision function, token texts, the failure throttle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strato.access import Grant, Principal, Resource, Role, decide, tokens
from strato.errors import UserError
from strato.server.auth import FailureThrottle

_KINDS = ("project", "feature_view", "feature_service", "entity")
_NAMES = ("a", "b")
_ACTIONS = {"read": Role.READER, "list": Role.READER, "write": Role.WRITER, "apply": Role.ADMIN, "admin": Role.ADMIN}

grants = st.builds(
    lambda role, scoped, kind, name: Grant(role, kind, name) if scoped else Grant(role),
    st.sampled_from(list(Role)),
    st.booleans(),
    st.sampled_from(["feature_view", "feature_service"]),
    st.sampled_from(_NAMES),
)


@given(
    held=st.lists(grants, max_size=4),
    action=st.sampled_from(sorted(_ACTIONS)),
    kind=st.sampled_from(_KINDS),
    name=st.sampled_from(_NAMES),
)
def test_allowed_exactly_when_some_grant_covers_with_enough_role(
    held: list[Grant], action: str, kind: str, name: str
) -> None:
    principal = Principal("0123456789ab", "t", tuple(held))
    resource = Resource(kind, name)
    oracle = any(
        g.role >= _ACTIONS[action] and (g.scope_name is None or (g.scope_kind, g.scope_name) == (kind, name))
        for g in held
    )
    reason = decide(principal, action, resource)
    assert (reason is None) == oracle
    if reason is not None:
        assert action in reason
        assert str(resource) in reason


def test_grant_shapes_are_checked() -> None:
    with pytest.raises(UserError, match="project grant names no object"):
        Grant(Role.READER, "project", "x")
    with pytest.raises(UserError, match="names one"):
        Grant(Role.READER, "feature_view")
    with pytest.raises(UserError, match="grant scope 'entity'"):
        Grant(Role.READER, "entity", "user")
    with pytest.raises(UserError, match="role 'owner': expected one of reader, writer, admin"):
        Role.parse("owner")


def test_tokens_round_trip_and_hide_their_secret() -> None:
    made = tokens.new_token()
    assert made.text.startswith(f"strato_{made.id}_")
    assert made.text not in repr(made)
    parsed = tokens.parse(made.text)
    assert parsed is not None
    token_id, secret = parsed
    assert token_id == made.id
    assert tokens.matches(secret, made.secret_sha256)
    assert not tokens.matches(secret + "x", made.secret_sha256)
    assert secret not in made.secret_sha256
    assert len({tokens.new_token().text for _ in range(100)}) == 100
    for bad in ("", "strato_", "strato_xyz_abc", f"other_{made.id}_{secret}", made.text + " extra"):
        assert tokens.parse(bad) is None


def test_the_throttle_locks_out_after_free_failures_and_doubles() -> None:
    throttle = FailureThrottle(free=3, max_lockout=4.0)
    now = 100.0
    assert [throttle.failed("ip", now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.locked_for("ip", now) == 0.0
    assert [throttle.failed("ip", now) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert throttle.locked_for("ip", now + 1) == 3.0
    assert throttle.locked_for("other", now) == 0.0
    throttle.succeeded("ip")
    assert throttle.locked_for("ip", now) == 0.0


def test_the_throttle_remembers_a_bounded_number_of_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from strato.server import auth

    monkeypatch.setattr(auth, "MAX_CLIENTS", 50)
    throttle = FailureThrottle()
    for i in range(500):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", 1.0)
    assert len(throttle) == 50
