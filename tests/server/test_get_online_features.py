"""Feast-shaped reads from a real `strato serve` process."""

from __future__ import annotations

import httpx

from server.conftest import NOW


def _get(client: httpx.Client, **body: object) -> dict:
    r = client.post("/get-online-features", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_feast_shape_values_statuses_and_order(client: httpx.Client) -> None:
    out = _get(
        client, features=["stats:score", "stats:x", "recent:amount", "stats:tag"], entities={"user_id": [1, 2, 3]}
    )
    # Features come grouped by view, as in `to_dict`; results follow metadata order either way.
    assert out["metadata"]["feature_names"] == ["user_id", "score", "x", "tag", "amount"]
    by_name = dict(zip(out["metadata"]["feature_names"], out["results"], strict=True))
    assert by_name["user_id"]["values"] == [1, 2, 3]
    assert by_name["user_id"]["statuses"] == ["PRESENT"] * 3
    assert by_name["score"]["values"] == [8.0, None, None]
    assert by_name["score"]["statuses"] == ["PRESENT", "NULL_VALUE", "NOT_FOUND"]
    assert by_name["x"]["values"] == [7, 3, None]
    assert by_name["x"]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert by_name["amount"]["values"] == [None, 2.0, None]
    assert by_name["amount"]["statuses"] == ["OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"]
    assert by_name["tag"]["values"] == ["a", "b", None]
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert by_name["score"]["event_timestamps"] == [stamp, stamp, "1970-01-01T00:00:00Z"]


def test_float64_goes_out_as_a_json_float(client: httpx.Client) -> None:
    r = client.post("/get-online-features", json={"features": ["stats:score"], "entities": {"user_id": [1]}})
    assert b"[8.0]" in r.content  # never `[8]`: Feast's remote client infers types from the JSON
    assert (
        b'"values":[7]'
        in client.post("/get-online-features", json={"features": ["stats:x"], "entities": {"user_id": [1]}}).content
    )


def test_feature_service_and_full_feature_names(client: httpx.Client) -> None:
    out = _get(client, feature_service="svc", entities={"user_id": [1]}, full_feature_names=True)
    assert out["metadata"]["feature_names"] == ["user_id", "stats__x", "stats__score", "stats__tag"]
    assert [r["values"] for r in out["results"]] == [[1], [7], [8.0], ["a"]]


def test_feast_remote_client_extra_fields_and_no_content_type(client: httpx.Client) -> None:
    """Feast's remote store adds include_feature_view_version_metadata and may send no content type."""
    import orjson

    body = {
        "entities": {"user_id": [2]},
        "features": ["stats:x"],
        "full_feature_names": False,
        "include_feature_view_version_metadata": False,
    }
    r = client.post("/get-online-features", content=orjson.dumps(body))
    assert r.status_code == 200, r.text
    assert r.json()["results"][1]["values"] == [3]


def test_listings_and_health(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    views = client.get("/list/feature-views").json()["feature_views"]
    assert sorted(v["name"] for v in views) == ["recent", "stats"]
    assert [e["name"] for e in client.get("/list/entities").json()["entities"]] == ["user"]
    assert [s["name"] for s in client.get("/list/feature-services").json()["feature_services"]] == ["svc"]
