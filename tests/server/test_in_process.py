"""The app in process (Starlette's TestClient) against the store's own answers, and the error map."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.conftest import make_repo

with warnings.catch_warnings():  # starlette asks for httpx2 over the locked httpx; the client works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from strato import FeatureStore
from strato.errors import BackendFailure, BackendUnavailable, ConflictError, NotFoundError, SchemaError
from strato.server import ServerSettings, create_app
from strato.server.error_responses import status_of
from strato.types import ReadStatus

_FEAST = {ReadStatus.PRESENT: "PRESENT", ReadStatus.NOT_FOUND: "NOT_FOUND", ReadStatus.EXPIRED: "OUTSIDE_MAX_AGE"}
_REFS = ["stats:x", "stats:score", "stats:tag", "recent:amount"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    with FeatureStore(make_repo(tmp_path_factory.mktemp("inproc"))) as s:
        yield s


@pytest.fixture(scope="module")
def client(store: FeatureStore) -> Iterator[TestClient]:
    with TestClient(create_app(ServerSettings(auth=False), store)) as c:
        yield c


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    users=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=8),
    refs=st.lists(st.sampled_from(_REFS), min_size=1, max_size=4, unique=True),
    full=st.booleans(),
)
def test_http_answer_is_the_store_answer(
    client: TestClient, store: FeatureStore, users: list[int], refs: list[str], full: bool
) -> None:
    """Values, order and statuses over HTTP are exactly `to_dict` and `statuses` in process."""
    r = client.post(
        "/get-online-features", json={"features": refs, "entities": {"user_id": users}, "full_feature_names": full}
    )
    assert r.status_code == 200, r.text
    got = r.json()
    expected = store.get_online_features(refs, {"user_id": users}, full_feature_names=full)
    values = expected.to_dict()
    statuses = expected.statuses()
    assert got["metadata"]["feature_names"] == list(values)
    for name, result in zip(got["metadata"]["feature_names"], got["results"], strict=True):
        assert result["values"] == values[name]
        if name == "user_id":
            continue
        want = [
            "NULL_VALUE" if s is ReadStatus.PRESENT and v is None else _FEAST[s]
            for s, v in zip(statuses[name], values[name], strict=True)
        ]
        assert result["statuses"] == want


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (SchemaError("bad"), 400),
        (ConflictError("again"), 400),
        (NotFoundError("no view"), 404),
        (BackendUnavailable("lock held"), 503),
        (BackendFailure("corrupt"), 500),
        (RuntimeError("secret internals"), 500),
    ],
)
def test_error_map(exc: Exception, status: int) -> None:
    code, message = status_of(exc)
    assert code == status
    if not isinstance(exc, RuntimeError):
        assert str(exc) in message
    else:
        assert "secret" not in message  # a bug's details stay in the server's log


def test_settings_refuse_nonsense() -> None:
    from strato.errors import ConfigError

    with pytest.raises(ConfigError, match="max_batch_rows"):
        ServerSettings(max_batch_rows=0)
