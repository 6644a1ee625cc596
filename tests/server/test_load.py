"""A bounded load test: many keep-alive clients against a real two-worker `strato serve`.

Loopback only, a fixed number of requests and a time limit: 16 client threads send 150
lookups each (entities cycling over the written users, features and a service, and reads
interleaved with pushes of new values to other users), and every answer must be a 200 with
the values the repo holds. Zero errors, or the test fails; it stops by itself.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from server.conftest import Server, start_server
from strato import FeatureStore

CLIENTS = 16
REQUESTS = 150
TIME_LIMIT_S = 120
USERS = 200


@pytest.fixture(scope="module")
def loaded(repo: Path) -> Iterator[Server]:
    now = datetime.now(UTC)
    with FeatureStore(repo) as store:
        store.write(
            "stats",
            {
                "user_id": list(range(1000, 1000 + USERS)),
                "event_timestamp": [now] * USERS,
                "x": list(range(USERS)),
                "score": [u / 2 for u in range(USERS)],
                "tag": [f"t{u}" for u in range(USERS)],
            },
        )
    s = start_server(repo, "--workers", "2", "--no-auth")
    yield s
    s.stop()


def _post(conn: http.client.HTTPConnection, path: str, body: object, failures: list[str], what: str) -> bytes | None:
    """POST `body` as JSON; the answer's bytes, or None (and a failure noted) unless a 200."""
    conn.request("POST", path, orjson.dumps(body), {"content-type": "application/json"})
    answer = conn.getresponse()
    text = answer.read()
    if answer.status != 200:
        failures.append(f"{what}: {answer.status} {text[:200]!r}")
        return None
    return text


def _client(url: str, index: int, failures: list[str], deadline: float) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for i in range(REQUESTS):
            if time.monotonic() > deadline:
                failures.append(f"client {index}: time limit reached at request {i}")
                return
            u = (index * REQUESTS + i) % USERS
            if i % 10 == 9:  # a push of a new user's row, then its read through the same worker pool
                pushed = 5000 + index * REQUESTS + i
                body = {
                    "feature_view": "stats",
                    "df": {
                        "user_id": [pushed],
                        "event_timestamp": [datetime.now(UTC).isoformat()],
                        "x": [pushed],
                        "score": [1.5],
                        "tag": ["p"],
                    },
                }
                _post(conn, "/push", body, failures, f"client {index} push {i}")
                continue
            if i % 2:
                query: dict[str, object] = {"feature_service": "svc", "entities": {"user_id": [1000 + u]}}
            else:
                query = {"features": ["stats:x", "stats:score", "stats:tag"], "entities": {"user_id": [1000 + u]}}
            text = _post(conn, "/get-online-features", query, failures, f"client {index} request {i}")
            if text is None:
                continue
            results = orjson.loads(text)["results"]
            got = [r["values"][0] for r in results]
            if got != [1000 + u, u, u / 2, f"t{u}"]:
                failures.append(f"client {index} request {i}: user {1000 + u} read {got}")
    except OSError as exc:
        failures.append(f"client {index}: {exc!r}")
    finally:
        conn.close()


def test_sixteen_clients_get_every_answer_right(loaded: Server) -> None:
    failures: list[str] = []
    deadline = time.monotonic() + TIME_LIMIT_S
    threads = [
        threading.Thread(target=_client, args=(loaded.url, i, failures, deadline), daemon=True) for i in range(CLIENTS)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIME_LIMIT_S + 30)
    assert not any(t.is_alive() for t in threads), "a client hung past the time limit"
    assert failures == [], failures[:10]
    assert loaded.process.poll() is None, "the server died under load"
    elapsed = time.monotonic() - began
    assert elapsed < TIME_LIMIT_S
    with loaded.client() as c:  # and it still answers, with what the pushes wrote
        r = c.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [5000 + 9]}})
        assert r.status_code == 200
        assert r.json()["results"][1]["values"] == [5009]
