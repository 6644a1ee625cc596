"""Training set records: numbered per name, read back exactly, listed, kept per project."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from registry_samples import OpenRegistry

from strato.errors import NotFoundError, UserError
from strato.registry.base import PinnedTable, RegistryStore, TrainingSetRecord

RECORD = TrainingSetRecord(
    name="churn",
    service="fraud",
    service_version=2,
    tables=(
        PinnedTable("user_stats", 3, "user_stats@v1", "user_stats__v1", 7),
        PinnedTable("l", 1, "l@v1", "l__v1", None),
    ),
    features=(("user_stats@v3:amount", "amount"),),
    spine={"kind": "range", "start": "2026-01-01T00:00:00+00:00", "end": "2026-02-01T00:00:00+00:00", "view": None},
    timestamp_field="event_timestamp",
    entity_fingerprint="ab" * 32,
    content_digest="cd" * 32,
    row_count=12,
    statistics={"amount": {"type": "double", "count": 11, "nulls": 1, "min": 0.5, "max": 9.0, "mean": 3.25}},
    location=".strato/training_sets/churn/0123",
    format="parquet",
    author="alice",
)


def test_records_are_numbered_per_name_and_read_back_exactly(registry: RegistryStore) -> None:
    first = registry.add_training_set(RECORD)
    assert first.version == 1
    assert first.created_at is not None
    assert first.created_at.utcoffset() == timedelta(0)
    assert dataclasses.replace(first, version=0, created_at=None) == RECORD
    second = registry.add_training_set(dataclasses.replace(RECORD, row_count=5))
    other = registry.add_training_set(dataclasses.replace(RECORD, name="alpha"))
    assert (second.version, other.version) == (2, 1)
    assert registry.get_training_set("churn") == second
    assert registry.get_training_set("churn", version=1) == first
    assert registry.list_training_sets() == [other, first, second]
    assert registry.list_training_sets("churn") == [first, second]


def test_unknown_names_and_versions_are_named(registry: RegistryStore) -> None:
    registry.add_training_set(RECORD)
    with pytest.raises(NotFoundError, match="training set 'chrun' does not exist; did you mean 'churn'"):
        registry.get_training_set("chrun")
    with pytest.raises(NotFoundError, match="training set 'churn' has no version 4; it has 1"):
        registry.get_training_set("churn", version=4)
    with pytest.raises(UserError, match="version must be a positive integer"):
        registry.get_training_set("churn", version=0)
    with pytest.raises(UserError, match="training set name must be 1-128 characters"):
        registry.add_training_set(dataclasses.replace(RECORD, name=""))
    assert registry.list_training_sets() == [registry.get_training_set("churn")]


def test_projects_do_not_see_each_others_training_sets(open_registry: OpenRegistry) -> None:
    a, b = open_registry("a"), open_registry("b")
    a.add_training_set(RECORD)
    assert b.list_training_sets() == []
    assert b.add_training_set(RECORD).version == 1
