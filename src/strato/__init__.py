"""Strato: a feature store for real-time machine learning.

Define features once; read them two ways — the full history, point-in-time correct, to
train models (`FeatureStore.get_historical_features`), and the latest values in
microseconds to serve them (`FeatureStore.get_online_features`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strato.config import StratoConfig, load_config
    from strato.definitions.aggregation import Aggregation
    from strato.definitions.entity import Entity
    from strato.definitions.expectations import Expect
    from strato.definitions.feature_service import FeatureService
    from strato.definitions.feature_view import FeatureView, FileSource, SqlSource
    from strato.definitions.field import Field
    from strato.definitions.kafka_source import KafkaSource
    from strato.definitions.on_demand import OnDemandFeatureView, RequestSource, on_demand_feature_view
    from strato.errors import (
        AccessDeniedError,
        AuthenticationError,
        BackendError,
        BackendFailure,
        BackendUnavailable,
        BreakingChangeError,
        ConfigError,
        ConflictError,
        DefinitionError,
        NotFoundError,
        OnlineBehindError,
        SchemaError,
        StratoError,
        TransformationError,
        UserError,
        ValidationError,
    )
    from strato.online.response import OnlineResponse
    from strato.store import BackfillResult, FeatureStore, MaterializeResult, TrainingSet, WriteResult
    from strato.types import (
        Bool,
        Bytes,
        DType,
        Float32,
        Float64,
        Int32,
        Int64,
        List,
        Map,
        ReadStatus,
        String,
        Timestamp,
        Vector,
    )

# Names are imported on first use (PEP 562), so `import strato` — and every `strato` command's
# start-up, `--help` included — does not pay for pyarrow, pandas and the engines until needed.
_HOMES: dict[str, str] = {
    **dict.fromkeys(("StratoConfig", "load_config"), "strato.config"),
    "Aggregation": "strato.definitions.aggregation",
    "Entity": "strato.definitions.entity",
    "Expect": "strato.definitions.expectations",
    "FeatureService": "strato.definitions.feature_service",
    **dict.fromkeys(("FeatureView", "FileSource", "SqlSource"), "strato.definitions.feature_view"),
    "Field": "strato.definitions.field",
    **dict.fromkeys(("OnDemandFeatureView", "RequestSource", "on_demand_feature_view"), "strato.definitions.on_demand"),
    "KafkaSource": "strato.definitions.kafka_source",
    **dict.fromkeys(
        (
            "AccessDeniedError",
            "AuthenticationError",
            "BackendError",
            "BackendFailure",
            "BackendUnavailable",
            "BreakingChangeError",
            "ConfigError",
            "ConflictError",
            "DefinitionError",
            "NotFoundError",
            "OnlineBehindError",
            "SchemaError",
            "ValidationError",
            "StratoError",
            "TransformationError",
            "UserError",
        ),
        "strato.errors",
    ),
    "OnlineResponse": "strato.online.response",
    **dict.fromkeys(
        ("BackfillResult", "FeatureStore", "MaterializeResult", "TrainingSet", "WriteResult"), "strato.store"
    ),
    **dict.fromkeys(
        (
            "Bool",
            "Bytes",
            "DType",
            "Float32",
            "Float64",
            "Int32",
            "Int64",
            "List",
            "Map",
            "ReadStatus",
            "String",
            "Timestamp",
            "Vector",
        ),
        "strato.types",
    ),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("strato")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
            value = "0.0.0"
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'strato' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AccessDeniedError",
    "Aggregation",
    "AuthenticationError",
    "BackendError",
    "BackendFailure",
    "BackendUnavailable",
    "BackfillResult",
    "Bool",
    "BreakingChangeError",
    "Bytes",
    "ConfigError",
    "ConflictError",
    "DType",
    "DefinitionError",
    "Entity",
    "Expect",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "KafkaSource",
    "List",
    "Map",
    "MaterializeResult",
    "NotFoundError",
    "OnDemandFeatureView",
    "OnlineBehindError",
    "OnlineResponse",
    "ReadStatus",
    "RequestSource",
    "SchemaError",
    "SqlSource",
    "StratoConfig",
    "StratoError",
    "String",
    "Timestamp",
    "TrainingSet",
    "TransformationError",
    "UserError",
    "ValidationError",
    "Vector",
    "WriteResult",
    "__version__",
    "load_config",
    "on_demand_feature_view",
]
