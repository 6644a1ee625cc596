"""Push, write-to-online-store, metrics, and every class of bad request against a real server."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest


def _read(client: httpx.Client, refs: list[str], user_id: int) -> list[object]:
    r = client.post("/get-online-features", json={"features": refs, "entities": {"user_id": [user_id]}})
    assert r.status_code == 200, r.text
    return [res["values"][0] for res in r.json()["results"][1:]]


def test_push_then_read_back(client: httpx.Client) -> None:
    now = datetime.now(UTC).isoformat()
    body = {
        "push_source_name": "stats",
        "df": {"user_id": [40], "event_timestamp": [now], "x": [11], "score": [0.25], "tag": ["p"]},
        "to": "online",
    }
    r = client.post("/push", json=body)
    assert r.status_code == 200, r.text
    assert _read(client, ["stats:x", "stats:score", "stats:tag"], 40) == [11, 0.25, "p"]


def test_push_online_and_offline(client: httpx.Client) -> None:
    now = datetime.now(UTC).isoformat()
    body = {
        "feature_view": "recent",
        "df": {"user_id": [41], "event_timestamp": [now], "amount": [3.0]},
        "to": "online_and_offline",
    }
    assert client.post("/push", json=body).status_code == 200
    assert _read(client, ["recent:amount"], 41) == [3.0]


def test_write_to_online_store(client: httpx.Client) -> None:
    now = datetime.now(UTC).isoformat()
    body = {
        "feature_view_name": "stats",
        "df": {"user_id": [42], "event_timestamp": [now], "x": [5], "score": [1.0], "tag": ["w"]},
    }
    r = client.post("/write-to-online-store", json=body)
    assert r.status_code == 200, r.text
    assert _read(client, ["stats:x", "stats:score"], 42) == [5, 1.0]


def test_metrics(client: httpx.Client) -> None:
    client.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [1, 999]}})
    client.post("/get-online-features", content=b"{not json", headers={"content-type": "application/json"})
    client.post("/get-online-features", json={"feature_service": "svc", "entities": {"user_id": [1]}})
    text = client.get("/metrics").text
    assert 'strato_request_duration_seconds_bucket{endpoint="get-online-features"' in text
    assert "strato_rows_served_total" in text
    assert 'strato_feature_service_duration_seconds_count{feature_service="svc"}' in text
    assert 'strato_feature_statuses_total{status="NOT_FOUND"}' in text
    assert 'strato_request_errors_total{endpoint="get-online-features",status="400"}' in text


_GOOD = {"features": ["stats:x"], "entities": {"user_id": [1]}}

BAD = [
    ("malformed json", b'{"features": [', "application/json", 400, "malformed JSON"),
    ("not an object", b"[1, 2]", "application/json", 400, "expected a JSON object"),
    ("wrong content type", b"features=stats:x", "application/x-www-form-urlencoded", 415, "content type"),
    ("unknown view", {"features": ["nope:x"], "entities": {"user_id": [1]}}, None, 404, "nope"),
    ("unknown feature", {"features": ["stats:nope"], "entities": {"user_id": [1]}}, None, 404, "nope"),
    ("unknown service", {"feature_service": "nope", "entities": {"user_id": [1]}}, None, 404, "nope"),
    ("wrong key type", {"features": ["stats:x"], "entities": {"user_id": ["abc"]}}, None, 400, "user_id"),
    ("float key", {"features": ["stats:x"], "entities": {"user_id": [1.5]}}, None, 400, "user_id"),
    ("bool key", {"features": ["stats:x"], "entities": {"user_id": [True]}}, None, 400, "user_id"),
    ("null key", {"features": ["stats:x"], "entities": {"user_id": [None]}}, None, 400, "user_id"),
    ("huge key", {"features": ["stats:x"], "entities": {"user_id": [2**70]}}, None, 400, "user_id"),
    ("missing key", {"features": ["stats:x"], "entities": {"account": [1]}}, None, 400, "user_id"),
    ("missing entities", {"features": ["stats:x"]}, None, 400, "entities"),
    ("no features", {"entities": {"user_id": [1]}}, None, 400, "features"),
    ("features not a list", {"features": "stats:x", "entities": {"user_id": [1]}}, None, 400, "features"),
    ("ragged columns", {"features": ["stats:x"], "entities": {"user_id": [1, 2], "b": [1]}}, None, 400, "lengths"),
    ("bad full names", {**_GOOD, "full_feature_names": "yes"}, None, 400, "full_feature_names"),
    ("oversized batch", {"features": ["stats:x"], "entities": {"user_id": list(range(101))}}, None, 413, "100 rows"),
    ("oversized body", {"features": ["stats:x"], "entities": {"user_id": [1]}, "pad": "x" * 5000}, None, 413, "4096"),
    ("empty body", b"", "application/json", 400, "malformed JSON"),
    ("not utf-8", b"\xff\xfe{}", "application/json", 400, "malformed JSON"),
    ("NaN literal", b'{"features": ["stats:x"], "entities": {"user_id": [NaN]}}', "application/json", 400, "malformed"),
    ("nested too deep", b"[" * 2000, "application/json", 400, "depth"),
    ("wrong content type text", b'{"features": ["stats:x"]}', "text/plain", 415, "text/plain"),
    ("key column not a list", {"features": ["stats:x"], "entities": {"user_id": 1}}, None, 400, "entities.user_id"),
    ("list key", {"features": ["stats:x"], "entities": {"user_id": [[1]]}}, None, 400, "user_id"),
    ("no entity columns", {"features": ["stats:x"], "entities": {}}, None, 400, "no columns"),
    ("features and service", {**_GOOD, "feature_service": "svc"}, None, 400, "not both"),
    ("feature twice", {"features": ["stats:x", "stats:x"], "entities": {"user_id": [1]}}, None, 400, "twice"),
    ("malformed reference", {"features": ["statsx"], "entities": {"user_id": [1]}}, None, 400, "'statsx'"),
    ("empty reference", {"features": ["stats:"], "entities": {"user_id": [1]}}, None, 400, "'stats:'"),
    ("unknown version", {"features": ["stats@v99:x"], "entities": {"user_id": [1]}}, None, 404, "version 99"),
    ("service not a name", {"feature_service": 3, "entities": {"user_id": [1]}}, None, 400, "feature_service"),
]


@pytest.mark.parametrize(("case", "body", "ctype", "status", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_get_requests(
    limited: httpx.Client, case: str, body: object, ctype: str | None, status: int, needle: str
) -> None:
    if isinstance(body, bytes):
        r = limited.post("/get-online-features", content=body, headers={"content-type": ctype or ""})
    else:
        r = limited.post("/get-online-features", json=body)
    assert r.status_code == status, (case, r.text)
    error = r.json()["error"]
    assert needle in error, (case, error)
    assert "Traceback" not in r.text
    # The server keeps serving.
    assert limited.post("/get-online-features", json=_GOOD).status_code == 200


_T = "2026-01-01T00:00:00"


def _row(user_id: object = 1, t: str = _T, x: object = 1) -> dict[str, list[object]]:
    return {"user_id": [user_id], "event_timestamp": [t], "x": [x], "score": [1.0], "tag": ["t"]}


BAD_WRITES = [
    ("push unknown view", "/push", {"feature_view": "nope", "df": {"user_id": [1]}}, 404, "nope"),
    ("push no view", "/push", {"df": {"user_id": [1]}}, 400, "push_source_name"),
    ("push bad target", "/push", {"feature_view": "stats", "df": {"user_id": [1]}, "to": "moon"}, 400, "moon"),
    ("push missing column", "/push", {"feature_view": "stats", "df": {"user_id": [1]}}, 400, "event_timestamp"),
    (
        "push wrong type",
        "/push",
        {
            "feature_view": "stats",
            "df": {
                "user_id": ["a"],
                "event_timestamp": ["2026-01-01T00:00:00"],
                "x": [1],
                "score": [1.0],
                "tag": ["t"],
            },
        },
        400,
        "user_id",
    ),
    ("write no view name", "/write-to-online-store", {"df": {"user_id": [1]}}, 400, "feature_view_name"),
    ("write df not columns", "/write-to-online-store", {"feature_view_name": "stats", "df": [1]}, 400, "df"),
    ("push malformed json", "/push", b'{"feature_view": ', 400, "malformed JSON"),
    ("push wrong content type", "/push", (b"user_id=1", "application/x-www-form-urlencoded"), 415, "content type"),
    ("push oversized batch", "/push", {"feature_view": "stats", "df": {"user_id": list(range(101))}}, 413, "100 rows"),
    (
        "write oversized batch",
        "/write-to-online-store",
        {"feature_view_name": "stats", "df": {"user_id": list(range(101))}},
        413,
        "100 rows",
    ),
    ("push oversized body", "/push", {"feature_view": "stats", "df": {"tag": ["x" * 5000]}}, 413, "4096"),
    ("push wrong feature type", "/push", {"feature_view": "stats", "df": _row(x="abc")}, 400, "column 'x', row 0"),
    ("push unknown column", "/push", {"feature_view": "stats", "df": {**_row(), "zzz": [1]}}, 400, "zzz"),
    ("push unparsable time", "/push", {"feature_view": "stats", "df": _row(t="yesterday")}, 400, "'yesterday'"),
    ("push future time", "/push", {"feature_view": "stats", "df": _row(t="2099-01-01T00:00:00")}, 400, "future"),
    ("push null key", "/push", {"feature_view": "stats", "df": _row(user_id=None)}, 400, "join key is null"),
    (
        "push mixed times",
        "/push",
        {"feature_view": "stats", "df": {k: v * 2 for k, v in _row().items()} | {"event_timestamp": [_T, 5]}},
        400,
        "column 'event_timestamp', row 1: holds 5",
    ),
    ("push target not a name", "/push", {"feature_view": "stats", "df": _row(), "to": 5}, 400, "'to'"),
    (
        "write no event time",
        "/write-to-online-store",
        {"feature_view_name": "stats", "df": {"user_id": [1], "x": [1], "created": [None]}},
        400,
        "event time column 'event_timestamp'",
    ),
]


@pytest.mark.parametrize(("case", "path", "body", "status", "needle"), BAD_WRITES, ids=[b[0] for b in BAD_WRITES])
def test_bad_writes(limited: httpx.Client, case: str, path: str, body: object, status: int, needle: str) -> None:
    if isinstance(body, bytes):
        body = (body, "application/json")
    if isinstance(body, tuple):
        r = limited.post(path, content=body[0], headers={"content-type": body[1]})
    else:
        r = limited.post(path, json=body)
    assert r.status_code == status, (case, r.text)
    assert needle in r.json()["error"], (case, r.text)
    assert "Traceback" not in r.text
    assert limited.get("/health").status_code == 200


def test_oversized_chunked_body_without_length(limited: httpx.Client) -> None:
    """A body sent in chunks, with no Content-Length, is cut off at the limit too."""

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"features": ["stats:x"], "entities": {"user_id": [1]}, "pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    r = limited.post("/get-online-features", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "4096" in r.json()["error"]
    assert limited.post("/get-online-features", json=_GOOD).status_code == 200


def test_unknown_route_and_method_are_json(limited: httpx.Client) -> None:
    r = limited.get("/nope")
    assert r.status_code == 404
    assert "error" in r.json()
    r = limited.get("/get-online-features")
    assert r.status_code == 405
    assert "error" in r.json()


def test_feasts_created_column_becomes_the_views_own_or_goes() -> None:
    """Feast's remote store sends ``created`` with every write (null without a created column)."""
    from strato.server.feast import created_column

    df = {"user_id": [1, 2], "created": ["2026-01-01T00:00:00", None]}
    assert created_column(df, None) == {"user_id": [1, 2]}  # no created column: write order breaks ties
    assert created_column(df, "ingested_at") == {"user_id": [1, 2], "ingested_at": df["created"]}
    assert created_column({"user_id": [1], "created": [None]}, "ingested_at") == {"user_id": [1], "ingested_at": [None]}
    assert created_column(df, "created") is df
    with_own = {"user_id": [1], "created": ["x"], "ingested_at": ["y"]}
    assert created_column(with_own, "ingested_at") == {"user_id": [1], "ingested_at": ["y"]}  # the frame's own wins
