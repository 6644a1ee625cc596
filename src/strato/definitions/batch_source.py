"""Batch sources of a view's rows: a file (`FileSource`) or a SQL query over files and views
(`SqlSource`, a *batch transformation*).

A `SqlSource` view is computed, not written: `strato backfill START END` (and `strato
materialize`) run its query on the offline engine for the event times not computed yet, and
write the result to the view's history and online store like any write. The query sees

* each view named in `inputs` as a table under the view's own name: its history, each
  (join keys, event time) once, its latest write (design rule 2), with the columns
  ``join keys, event_timestamp, features, created_timestamp``;
* each `FileSource` in `inputs` under the source's `name` (Parquet, CSV or a Delta table).

It must give the view's join keys, its `timestamp_field` and its features (checked on every
run, naming the missing or mistyped column). It may name the parameters ``$start`` and ``$end``,
the bounds of the piece being computed, to narrow its inputs (a look-back window reaches back
from ``$start``); rows outside ``[start, end)`` are dropped from its result in any case. Pure definitions: the query is parsed and run by
the engine, never here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from strato.definitions._naming import check_name
from strato.errors import DefinitionError

FileFormat = Literal["parquet", "csv", "delta"]


@dataclass(frozen=True)
class FileSource:
    """A batch file (Parquet, CSV or a Delta table) that a view's rows can be loaded from.

    `name` (Feast's spelling) is needed only where a `SqlSource` query reads the file: it is
    the table name the query uses.
    """

    path: str
    format: FileFormat = "parquet"
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise DefinitionError(f"FileSource: path must be a non-empty string, got {self.path!r}")
        if self.format not in ("parquet", "csv", "delta"):
            raise DefinitionError(f"FileSource {self.path!r}: format must be parquet, csv or delta")
        if self.name is not None:
            check_name("FileSource", self.name, where=f"FileSource {self.path!r}")

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable); `name` only when set, so a source
        without one keeps the spec (and fingerprint) it had before names existed."""
        spec: dict[str, Any] = {"type": "file", "path": self.path, "format": self.format}
        if self.name is not None:
            spec["name"] = self.name
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FileSource:
        """Rebuild the source from `to_spec` data."""
        return cls(spec["path"], spec.get("format", "parquet"), spec.get("name"))


@dataclass(frozen=True)
class SqlSource:
    """A view computed by one SQL SELECT over other views and named batch files.

    >>> from strato import FileSource, SqlSource
    >>> src = SqlSource(
    ...     "SELECT user_id, event_timestamp, amount * rate AS amount_eur "
    ...     "FROM payments JOIN fx USING (currency)",
    ...     inputs=[FileSource("data/payments.parquet", name="payments"), "fx"],
    ... )
    >>> src.view_names, src.file_names
    (('fx',), ('payments',))

    `inputs` lists what the query reads: feature views (a `FeatureView` or its name), visible
    under the view's name, and `FileSource`s with a `name`, visible under that name. A
    relative file path is read from the feature repo's folder.
    """

    query: str
    inputs: tuple[FileSource | str, ...] = ()

    def __init__(self, query: str, inputs: Sequence[Any] = ()):
        if not isinstance(query, str) or not query.strip():
            raise DefinitionError("SqlSource: query must be a non-empty SQL SELECT")
        if isinstance(inputs, (str, FileSource)) or not isinstance(inputs, Sequence):
            raise DefinitionError("SqlSource: inputs must be a list of feature views, view names and FileSources")
        resolved: list[FileSource | str] = []
        seen: set[str] = set()
        for item in inputs:
            if isinstance(item, FileSource):
                if item.name is None:
                    raise DefinitionError(
                        f"SqlSource: FileSource {item.path!r} needs a name, the table name the query uses "
                        f"(FileSource({item.path!r}, name=...))"
                    )
                name: str = item.name
                resolved.append(item)
            else:
                name = _view_name(item)
                resolved.append(name)
            if name.lower() in seen:  # DuckDB compares identifiers without case
                raise DefinitionError(f"SqlSource: two inputs are named {name!r}")
            seen.add(name.lower())
        object.__setattr__(self, "query", query.strip())
        object.__setattr__(self, "inputs", tuple(resolved))

    @property
    def view_names(self) -> tuple[str, ...]:
        """The views the query reads, in `inputs` order."""
        return tuple(i for i in self.inputs if isinstance(i, str))

    @property
    def file_names(self) -> tuple[str, ...]:
        """The table names of the files the query reads, in `inputs` order."""
        return tuple(i.name for i in self.inputs if isinstance(i, FileSource) and i.name is not None)

    @property
    def files(self) -> tuple[FileSource, ...]:
        """The files the query reads, in `inputs` order."""
        return tuple(i for i in self.inputs if isinstance(i, FileSource))

    @property
    def fingerprint(self) -> str:
        """What identifies the computation (query and inputs): intervals computed under one
        fingerprint are not computed again; a changed query starts a new record."""
        text = json.dumps(self.to_spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        inputs = [i.to_spec() if isinstance(i, FileSource) else {"type": "view", "name": i} for i in self.inputs]
        return {"type": "sql", "query": self.query, "inputs": inputs}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SqlSource:
        """Rebuild the source from `to_spec` data."""
        inputs: list[FileSource | str] = [
            str(i["name"]) if i.get("type") == "view" else FileSource.from_spec(i) for i in spec.get("inputs", ())
        ]
        return cls(spec["query"], inputs)


def _view_name(item: object) -> str:
    """A view input as its name: a `FeatureView` (anything with a string `name` and
    `entities`, so this module need not import the view's) or a name string."""
    if isinstance(item, str):
        return check_name("feature view", item, where="SqlSource inputs")
    name = getattr(item, "name", None)
    if isinstance(name, str) and hasattr(item, "entities"):
        return name
    raise DefinitionError(f"SqlSource: inputs take feature views, view names and named FileSources, got {item!r}")
