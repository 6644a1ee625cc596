"""Feast's own client against `strato serve`: run by `test_feast_client.py` in a separate venv
that has Feast 0.67 (never Strato's: their pins clash), as ``python feast_client.py URL DIR``.

It builds a Feast repo whose online store is ``{type: remote, path: URL}`` with the same views
as the served Strato repo (`conftest.make_repo`), then calls Feast's `get_online_features`
(a feature list and a feature service) and `write_to_online_store`, as a Feast user would.
It prints one JSON object: for each call, what Feast's `OnlineResponse` gave back (values
with their Python type names, statuses by Feast's enum names, feature order), so the test
asserts on what the Feast client saw, not on our own HTTP reading of it.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, RepoConfig  # noqa: E402
from feast.protos.feast.serving.ServingService_pb2 import FieldStatus  # noqa: E402
from feast.types import Float64, Int64, String  # noqa: E402
from feast.value_type import ValueType  # noqa: E402


def _seen(response: Any) -> dict[str, Any]:
    """What Feast's client made of the server's answer."""
    data = response.to_dict()
    proto = response.proto
    return {
        "order": list(proto.metadata.feature_names.val),
        "values": data,
        "types": {name: [type(v).__name__ for v in values] for name, values in data.items()},
        "statuses": {
            name: [FieldStatus.Name(s) for s in result.statuses]
            for name, result in zip(proto.metadata.feature_names.val, proto.results, strict=True)
        },
    }


def main(url: str, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="proj",
        provider="local",
        registry=str(where / "registry.db"),
        online_store={"type": "remote", "path": url},
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config, repo_path=str(where))
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    source = FileSource(path=str(where / "none.parquet"), timestamp_field="event_timestamp")
    stats = FeatureView(
        name="stats",
        entities=[user],
        schema=[
            Field(name="user_id", dtype=Int64),
            Field(name="x", dtype=Int64),
            Field(name="score", dtype=Float64),
            Field(name="tag", dtype=String),
        ],
        source=source,
        online=True,
    )
    recent = FeatureView(
        name="recent",
        entities=[user],
        ttl=timedelta(days=1),
        schema=[Field(name="user_id", dtype=Int64), Field(name="amount", dtype=Float64)],
        source=source,
        online=True,
    )
    svc = FeatureService(name="svc", features=[stats])
    store.apply([user, stats, recent, svc])

    out: dict[str, Any] = {}
    # Columns are asked for out of the view's order: the answer must follow the request.
    refs = ["stats:tag", "stats:score", "stats:x", "recent:amount"]
    rows = [{"user_id": 1}, {"user_id": 2}, {"user_id": 999}]
    out["features"] = _seen(store.get_online_features(features=refs, entity_rows=rows))
    out["service"] = _seen(store.get_online_features(features=svc, entity_rows=[{"user_id": 1}]))
    out["full_names"] = _seen(
        store.get_online_features(features=["stats:x"], entity_rows=[{"user_id": 1}], full_feature_names=True)
    )

    now = datetime.now(UTC).replace(microsecond=0)
    df = pd.DataFrame(
        {
            "user_id": [500, 501],
            "x": [41, 42],
            "score": [3.0, 0.5],  # 3.0 must come back a float, not 3
            "tag": ["w1", "w2"],
            "event_timestamp": [now, now - timedelta(seconds=1)],
        }
    )
    store.write_to_online_store("stats", df=df)
    after = store.get_online_features(
        features=["stats:x", "stats:score", "stats:tag"], entity_rows=[{"user_id": 500}, {"user_id": 501}]
    )
    out["after_write"] = _seen(after)
    out["written_at"] = now.isoformat()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
