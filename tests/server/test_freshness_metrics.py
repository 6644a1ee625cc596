"""Freshness per view in `/metrics`, scraped from a real `strato serve` after real writes:
through the server itself (shown at once) and by another process (from the view's history
table, within `REFRESH_SECONDS`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.conftest import NOW, Server, make_repo, start_server
from strato import FeatureStore
from strato.server.freshness import REFRESH_SECONDS

GAUGES = (
    "strato_view_last_event_timestamp_seconds",
    "strato_view_last_ingest_timestamp_seconds",
    "strato_view_age_seconds",
    "strato_view_ingest_age_seconds",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, float]]:
    before = time.time()
    repo = make_repo(tmp_path_factory.mktemp("fresh_repo"))
    server = start_server(repo)
    yield server, repo, before
    server.stop()


def _scrape(client: httpx.Client) -> dict[str, dict[str, float]]:
    """{gauge: {view: value}} of the freshness gauges."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    found: dict[str, dict[str, float]] = {name: {} for name in GAUGES}
    for family in text_string_to_metric_families(r.text):
        if family.name in found:
            for sample in family.samples:
                found[family.name][sample.labels["view"]] = sample.value
    return found


def test_freshness_of_the_rows_written_before_the_server_started(served: tuple[Server, Path, float]) -> None:
    server, _, before = served
    with server.client() as client:
        start = time.time()
        got = _scrape(client)
    # make_repo wrote both views at NOW (and "recent" once at NOW - 10 days: the newest wins).
    assert got["strato_view_last_event_timestamp_seconds"] == {"stats": NOW.timestamp(), "recent": NOW.timestamp()}
    for view in ("stats", "recent"):
        written = got["strato_view_last_ingest_timestamp_seconds"][view]
        assert before - 1 <= written <= start + 1
        assert got["strato_view_age_seconds"][view] == pytest.approx(start - NOW.timestamp(), abs=2)
        assert got["strato_view_ingest_age_seconds"][view] == pytest.approx(start - written, abs=2)


def test_a_push_through_the_server_shows_at_once(served: tuple[Server, Path, float]) -> None:
    server, _, _ = served
    event = datetime.now(UTC) - timedelta(milliseconds=500)  # newer than make_repo's NOW
    body = {
        "feature_view": "stats",
        "df": {"user_id": [90], "event_timestamp": [event.isoformat()], "x": [1], "score": [1.0], "tag": ["f"]},
        "to": "online",  # online only: nothing in the history table shows it
    }
    with server.client() as client:
        pushed = time.time()
        assert client.post("/push", json=body).status_code == 200
        got = _scrape(client)
    assert got["strato_view_last_event_timestamp_seconds"]["stats"] == pytest.approx(event.timestamp(), abs=1e-5)
    assert pushed - 0.1 <= got["strato_view_last_ingest_timestamp_seconds"]["stats"] <= time.time()
    assert 0.5 <= got["strato_view_age_seconds"]["stats"] < 3
    assert got["strato_view_ingest_age_seconds"]["stats"] < 3
    assert got["strato_view_last_event_timestamp_seconds"]["recent"] == NOW.timestamp()  # the other view: untouched


def test_a_write_by_another_process_shows_within_the_refresh(served: tuple[Server, Path, float]) -> None:
    server, repo, _ = served
    event = datetime.now(UTC) - timedelta(milliseconds=200)  # the newest of the view
    with FeatureStore(repo) as store:
        store.write("recent", [{"user_id": 91, "event_timestamp": event, "amount": 4.0}])
    written = time.time()
    deadline = time.monotonic() + REFRESH_SECONDS + 5
    with server.client() as client:
        while True:
            got = _scrape(client)
            # From the Delta files' statistics, which keep times to the millisecond.
            if got["strato_view_last_event_timestamp_seconds"]["recent"] == pytest.approx(event.timestamp(), abs=1e-3):
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.2)
    assert got["strato_view_last_ingest_timestamp_seconds"]["recent"] == pytest.approx(written, abs=2)
    assert got["strato_view_age_seconds"]["recent"] == pytest.approx(time.time() - event.timestamp(), abs=2)
