"""Strato: a feature store for real-time machine learning.

Define features once; read them two ways — the full history, point-in-time correct, to
train models (`FeatureStore.get_historical_features`), and the latest values in
microseconds to serve them (`FeatureStore.get_online_features`).
"""

from importlib.metadata import PackageNotFoundError, version

from strato.config import StratoConfig, load_config
from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView, FileSource
from strato.definitions.field import Field
from strato.errors import (
    BackendError,
    BackendFailure,
    BackendUnavailable,
    BreakingChangeError,
    ConfigError,
    DefinitionError,
    NotFoundError,
    SchemaError,
    StratoError,
    UserError,
)
from strato.online.response import OnlineResponse
from strato.store import FeatureStore, MaterializeResult, TrainingSet, WriteResult
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

try:
    __version__ = version("strato")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BackendError",
    "BackendFailure",
    "BackendUnavailable",
    "Bool",
    "BreakingChangeError",
    "Bytes",
    "ConfigError",
    "DType",
    "DefinitionError",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "List",
    "Map",
    "MaterializeResult",
    "NotFoundError",
    "OnlineResponse",
    "ReadStatus",
    "SchemaError",
    "StratoConfig",
    "StratoError",
    "String",
    "Timestamp",
    "TrainingSet",
    "UserError",
    "Vector",
    "WriteResult",
    "__version__",
    "load_config",
]
