"""Definitions validate on construction, name the object and field at fault, and round-trip as specs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from strato.definitions.entity import Entity
from strato.definitions.feature_service import FeatureService
from strato.definitions.feature_view import FeatureView, FileSource
from strato.definitions.field import Field
from strato.errors import DefinitionError
from strato.types import DType, Kind, List, Map, Vector

USER = Entity("user", join_keys={"user_id": "int64"})


def make_view(**overrides: Any) -> FeatureView:
    options: dict[str, Any] = {"entities": [USER], "schema": [Field("amount", "float64")]}
    options.update(overrides)
    return FeatureView(options.pop("name", "user_stats"), **options)


# ---------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("int64", "int64"),
        ("INT", "int64"),
        ("double", "float64"),
        ("str", "string"),
        ("boolean", "bool"),
        ("list< string >", "list<string>"),
        ("array<int32>", "list<int32>"),
        ("map<string,float64>", "map<string,float64>"),
        ("vector<float32,128>", "vector<float32,128>"),
        ("embedding<16>", "vector<float32,16>"),
    ],
)
def test_dtypes_parse_and_print_canonically(text: str, expected: str) -> None:
    dtype = DType.parse(text)
    assert str(dtype) == expected
    assert DType.parse(str(dtype)) == dtype


@pytest.mark.parametrize(
    "dtype",
    ["int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp", "list<int64>", "map<string,bool>"],
)
def test_dtypes_round_trip_through_arrow(dtype: str) -> None:
    parsed = DType.parse(dtype)
    assert DType.from_arrow(parsed.to_arrow()) == parsed


def test_vectors_are_fixed_size_float32_lists() -> None:
    assert Vector(4).to_arrow() == pa.list_(pa.float32(), 4)
    assert DType.from_arrow(pa.list_(pa.float32(), 4)) == Vector(4)
    assert List("string") == DType(Kind.LIST, item=DType(Kind.STRING))
    assert Map("float64").to_arrow() == pa.map_(pa.string(), pa.float64())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DType.parse("decimal"), "unknown type 'decimal'"),
        (lambda: DType.parse("list<list<int64>>"), "unknown type"),
        (lambda: Vector(0), "vector length must be a positive integer"),
        (lambda: DType(Kind.LIST, item=List("int64")), "list items must be a scalar type"),
        (lambda: DType(Kind.INT64, size=3), "scalar type int64 takes no item type or size"),
        (lambda: DType.from_arrow(pa.decimal128(10, 2)), "has no Strato equivalent"),
    ],
)
def test_bad_dtypes_are_refused(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build()


# ---------------------------------------------------------------------------- fields


@pytest.mark.parametrize("name", ["", "1st", "a-b", "with space", "x" * 129, None, 3])
def test_field_names_must_be_identifiers(name: Any) -> None:
    with pytest.raises(DefinitionError, match=r"field name .* is invalid"):
        Field(name, "int64")


def test_a_bad_field_type_names_the_field() -> None:
    with pytest.raises(DefinitionError, match=r"field 'amount': unknown type 'money'"):
        Field("amount", "money")


def test_field_tags_must_map_strings_to_strings() -> None:
    with pytest.raises(DefinitionError, match=r"field 'amount': tags must be a dict of str to str"):
        Field("amount", "float64", tags={"pii": True})  # type: ignore[dict-item]


def test_fields_round_trip_as_specs_leaving_out_empty_parts() -> None:
    bare, full = Field("a", "int64"), Field("b", "list<string>", description="why", tags={"team": "risk"})
    assert bare.to_spec() == {"name": "a", "dtype": "int64"}
    assert Field.from_spec(bare.to_spec()) == bare
    assert Field.from_spec(full.to_spec()) == full


# ---------------------------------------------------------------------------- entities


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Entity("bad name", {"id": "int64"}), r"entity name 'bad name' is invalid"),
        (lambda: Entity("user", {}), r"entity 'user': needs at least one join key"),
        (lambda: Entity("user", "user_id"), r"entity 'user': join_keys must be a dict"),  # type: ignore[arg-type]
        (lambda: Entity("user", [Field("id", "int64"), Field("id", "int64")]), r"join key 'id' appears twice"),
        (lambda: Entity("user", {"event_timestamp": "int64"}), r"join key 'event_timestamp' is a reserved"),
        (lambda: Entity("user", {"score": "float64"}), r"entity 'user': join key 'score' has type float64"),
        (lambda: Entity("user", {"ids": "list<int64>"}), r"join key 'ids' has type list<int64>"),
        (lambda: Entity("user", {"id": "int64"}, tags={"a": 1}), r"entity 'user': tags"),  # type: ignore[dict-item]
    ],
)
def test_bad_entities_are_refused_naming_entity_and_key(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build()


@pytest.mark.parametrize("dtype", ["int32", "int64", "string", "bytes"])
def test_join_keys_may_be_integers_strings_or_bytes(dtype: str) -> None:
    assert Entity("thing", {"id": dtype}).join_keys[0].dtype == DType.parse(dtype)


def test_entities_round_trip_as_specs() -> None:
    entity = Entity(
        "card", [Field("bank", "string"), Field("number", "int64")], description="a card", owner="risk", tags={"a": "b"}
    )
    assert Entity.from_spec(entity.to_spec()) == entity
    assert entity.join_key_names == ("bank", "number")


# ---------------------------------------------------------------------------- feature views


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "user-stats"}, r"feature view name 'user-stats' is invalid"),
        ({"entities": []}, r"feature view 'user_stats': entities must be a non-empty list of Entity"),
        ({"entities": ["user"]}, r"entities must be a non-empty list of Entity"),
        ({"schema": "amount"}, r"feature view 'user_stats': schema must be a list of Field"),
        ({"schema": []}, r"feature view 'user_stats': schema needs at least one feature"),
        ({"schema": [Field("user_id", "int64")]}, r"schema needs at least one feature besides the join keys"),
        ({"schema": [Field("a", "int64"), Field("a", "int64")]}, r"field 'a' appears twice in the schema"),
        ({"schema": [Field("event_timestamp", "timestamp")]}, r"field 'event_timestamp' is a reserved"),
        ({"schema": [Field("created_timestamp", "timestamp")]}, r"field 'created_timestamp' is a reserved"),
        ({"schema": [Field("ts", "timestamp")], "timestamp_field": "ts"}, r"field 'ts' is a reserved"),
        ({"schema": [Field("user_id", "string"), Field("a", "int64")]}, r"field 'user_id' is a join key of type int64"),
        ({"timestamp_field": "user_id"}, r"timestamp_field 'user_id' is also a join key"),
        ({"timestamp_field": "bad field"}, r"timestamp_field name 'bad field' in feature view 'user_stats'"),
        ({"ttl": timedelta(0)}, r"feature view 'user_stats': ttl must be a positive timedelta"),
        ({"ttl": timedelta(seconds=-1)}, r"ttl must be a positive timedelta"),
        ({"ttl": 3600}, r"ttl must be a positive timedelta"),
        ({"online": False, "offline": False}, r"a view must be online, offline or both"),
        ({"source": "data.parquet"}, r"source must be a FileSource"),
        ({"version": 0}, r"version must be a positive integer"),
        ({"data_version": "1"}, r"data_version must be a positive integer"),
        ({"tags": ["a"]}, r"feature view 'user_stats': tags must be a dict"),
    ],
)
def test_bad_views_are_refused_naming_view_and_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make_view(**overrides)


def test_entities_of_one_view_must_agree_on_shared_key_types() -> None:
    other = Entity("account", {"user_id": "string"})
    with pytest.raises(DefinitionError, match=r"feature view 'user_stats': join key 'user_id' has two different types"):
        make_view(entities=[USER, other])


def test_a_schema_may_repeat_join_keys_feast_style() -> None:
    fv = make_view(schema=[Field("user_id", "int64"), Field("amount", "float64")])
    assert fv.feature_names == ("amount",)
    assert fv.join_key_names == ("user_id",)


def test_views_over_several_entities_list_each_key_once() -> None:
    card = Entity("card", {"card_id": "string", "user_id": "int64"})
    fv = make_view(entities=[USER, card])
    assert fv.join_key_names == ("user_id", "card_id")


@pytest.mark.parametrize(
    "fv",
    [
        make_view(),
        make_view(
            schema=[
                Field("a", "float64", description="mean"),
                Field("v", "vector<float32,8>"),
                Field("m", "map<string,int64>"),
            ],
            ttl=timedelta(hours=36, seconds=1),
            source=FileSource("s3://bucket/rows.csv", "csv"),
            timestamp_field="ts",
            online=False,
            description="stats",
            owner="risk@example.com",
            tags={"tier": "1"},
        ),
    ],
)
def test_views_round_trip_as_specs(fv: FeatureView) -> None:
    back = FeatureView.from_spec(fv.to_spec(), {"user": USER})
    assert back == fv
    assert back.to_spec() == fv.to_spec()


def test_specs_leave_registry_versions_out_and_from_spec_sets_them() -> None:
    fv = make_view(version=3, data_version=2)
    assert "version" not in fv.to_spec()
    assert "data_version" not in fv.to_spec()
    back = FeatureView.from_spec(fv.to_spec(), {"user": USER}, version=3, data_version=2)
    assert (back.version, back.data_version, back.table_name) == (3, 2, "user_stats__v2")
    assert make_view().table_name == "user_stats__v1"
    assert make_view().with_versions(5, 4).table_name == "user_stats__v4"


def test_a_spec_naming_an_unknown_entity_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"feature view 'user_stats' refers to unknown entities \['user'\]"):
        FeatureView.from_spec(make_view().to_spec(), {})


def test_projections_select_known_features_only() -> None:
    fv = make_view(schema=[Field("a", "float64"), Field("b", "float64")])
    assert fv[["b"]].features == ("b",)
    with pytest.raises(DefinitionError, match=r"feature view 'user_stats' has no feature 'c'"):
        fv[["a", "c"]]
    with pytest.raises(DefinitionError, match=r"selection of feature view 'user_stats' is empty"):
        fv[[]]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FileSource(""), r"FileSource: path must be a non-empty string"),
        (lambda: FileSource("x.json", "json"), r"FileSource 'x.json': format must be parquet, csv or delta"),  # type: ignore[arg-type]
    ],
)
def test_bad_file_sources_are_refused(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        build()


# ---------------------------------------------------------------------------- feature services


def test_services_collect_features_from_views_projections_and_strings() -> None:
    stats = make_view(schema=[Field("a", "float64"), Field("b", "float64")])
    other = make_view(name="other", schema=[Field("c", "int64")])

    svc = FeatureService("fraud", [stats[["b"]], other, "user_stats:a", "user_stats:b"])

    assert svc.feature_refs == ("user_stats:b", "user_stats:a", "other:c")
    assert svc.features == (("user_stats", ("b", "a")), ("other", ("c",)))


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([], r"feature service 'fraud': needs at least one feature"),
        (["amount"], r"feature service 'fraud': features must be FeatureView, view\[\[\.\.\.\]\] or 'view:feature'"),
        (["a:b:c"], r"features must be"),
        ([42], r"features must be"),
    ],
)
def test_bad_services_are_refused(features: list[Any], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        FeatureService("fraud", features)


def test_service_names_are_checked() -> None:
    with pytest.raises(DefinitionError, match=r"feature service name 'fraud v1' is invalid"):
        FeatureService("fraud v1", ["user_stats:amount"])


def test_services_round_trip_as_specs() -> None:
    svc = FeatureService("fraud", ["v:a", "v:b", "w:c"], description="model", owner="me", tags={"k": "v"})
    back = FeatureService.from_spec(svc.to_spec(), version=4)
    assert back.version == 4
    assert back.to_spec() == svc.to_spec()
    assert back == FeatureService(
        "fraud", ["v:a", "v:b", "w:c"], description="model", owner="me", tags={"k": "v"}, version=4
    )
