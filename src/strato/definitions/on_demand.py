"""`OnDemandFeatureView`: features computed at request time by a Python function.

The function reads request data (the fields of a `RequestSource`, sent with the entity
rows online and found as columns of the entity frame offline) and features of other views,
and returns the view's declared schema. The same function runs in `get_online_features`
and in `get_historical_features`, on inputs built the same way, so training and serving see
one computation (`strato.store.on_demand` runs it).

At rest, the registry keeps the function as its source text and a fingerprint of it (a
digest of the text without decorators). A process that loads the view from the registry
finds the function again by importing its module: the definitions module must be
importable where the view is read (the feature repo's folder is put on ``sys.path`` for
that), and its function must still have the applied fingerprint, so a server never runs
code other than what was applied. This module stays pure: it only reads source text.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from strato.definitions._naming import RESERVED_COLUMNS, check_name, check_tags
from strato.definitions.feature_view import FeatureView, FeatureViewProjection
from strato.definitions.field import Field
from strato.errors import DefinitionError

Mode = Literal["pandas", "python", "arrow"]
MODES: tuple[Mode, ...] = ("pandas", "python", "arrow")

_FUNCTIONS: dict[tuple[str, str, str], Callable[..., Any]] = {}
"""Every transformation function this process defined, by (module, qualname, fingerprint):
a view loaded from the registry finds its function here before importing its module."""


def find_function(module: str, qualname: str, fingerprint: str) -> Callable[..., Any] | None:
    """The function with this fingerprint defined in this process, or None."""
    return _FUNCTIONS.get((module, qualname, fingerprint))


@dataclass(frozen=True)
class RequestSource:
    """Typed fields that arrive with each request rather than from a stored view (Feast's name).

    Online they are passed alongside the join keys (``entity_rows`` / the server's
    ``entities``); offline they are columns of the entity frame.

    >>> from strato import Float64, RequestSource
    >>> RequestSource("txn", schema=[Field("amount", Float64)]).field_names
    ('amount',)
    """

    name: str
    schema: tuple[Field, ...]
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __init__(
        self, name: str, schema: Sequence[Field], *, description: str = "", tags: dict[str, str] | None = None
    ):
        check_name("request source", name)
        where = f"request source {name!r}"
        if not isinstance(schema, Sequence) or not schema or not all(isinstance(f, Field) for f in schema):
            raise DefinitionError(f"{where}: schema must be a non-empty list of Field")
        names = [f.name for f in schema]
        if len(set(names)) != len(names):
            raise DefinitionError(f"{where}: a field appears twice in the schema")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "schema", tuple(schema))
        set_(self, "description", str(description))
        set_(self, "tags", check_tags(where, tags or {}))

    def __hash__(self) -> int:
        return hash((self.name, self.schema))

    @property
    def field_names(self) -> tuple[str, ...]:
        """The request fields' names, in schema order."""
        return tuple(f.name for f in self.schema)

    def to_spec(self) -> dict[str, Any]:
        """Plain data for the registry (JSON-serializable)."""
        return {
            "type": "request",
            "name": self.name,
            "schema": [f.to_spec() for f in self.schema],
            "description": self.description,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> RequestSource:
        """Rebuild the object from `to_spec` data, validated like a new one."""
        return cls(
            spec["name"],
            [Field.from_spec(f) for f in spec["schema"]],
            description=spec.get("description", ""),
            tags=spec.get("tags"),
        )


@dataclass(frozen=True)
class ViewInput:
    """Some features of one feature view that an on-demand view reads, with their types
    as they were when the on-demand view was defined (checked again when it runs)."""

    view: str
    features: tuple[Field, ...]
    join_keys: tuple[Field, ...]

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "feature_view",
            "name": self.view,
            "features": [f.to_spec() for f in self.features],
            "join_keys": [k.to_spec() for k in self.join_keys],
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ViewInput:
        return cls(
            spec["name"],
            tuple(Field.from_spec(f) for f in spec["features"]),
            tuple(Field.from_spec(k) for k in spec.get("join_keys", [])),
        )


@dataclass(frozen=True)
class UdfRef:
    """Where a transformation function lives and what its source text was when defined."""

    name: str
    module: str
    qualname: str
    source: str
    fingerprint: str

    def to_spec(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Source = FeatureView | FeatureViewProjection | RequestSource


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed at request time by a Python function (Feast's name and shape).

    `sources` are feature views (all their features), selections ``view[["a"]]`` and
    `RequestSource`s; `schema` declares the outputs, which are checked on every run (a
    missing column or a wrong type is a `TransformationError` naming the view and the
    column). `mode` says what the function takes and returns:

    * ``"pandas"`` — a DataFrame of inputs, one row per entity row, returning a DataFrame;
    * ``"arrow"`` — the same as a pyarrow Table, returning a Table (or a dict of columns);
    * ``"python"`` — a dict of input lists returning a dict of output lists, or, with
      ``singleton=True``, one dict of input values per row returning a dict of values.

    Input columns are named like Feast's: request fields and, with one feature view
    source, its features by their own names; with several view sources, features are
    named ``view__feature``. The join keys of the source views are inputs too.

    >>> from strato import Entity, FeatureView, Field, Float64, Int64, RequestSource
    >>> user = Entity("user", join_keys={"user_id": Int64})
    >>> stats = FeatureView("user_stats", entities=[user], schema=[Field("amount_mean", Float64)])
    >>> txn = RequestSource("txn", schema=[Field("amount", Float64)])
    >>> @on_demand_feature_view(sources=[stats, txn], schema=[Field("amount_ratio", Float64)], mode="python")
    ... def amount_ratio(inputs):
    ...     return {"amount_ratio": [a / m if m else None for a, m in zip(inputs["amount"], inputs["amount_mean"])]}
    >>> amount_ratio.feature_names
    ('amount_ratio',)
    """

    name: str
    sources: tuple[ViewInput | RequestSource, ...]
    schema: tuple[Field, ...]
    mode: Mode
    singleton: bool
    udf_ref: UdfRef
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    version: int | None = None
    udf: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    """The function itself when defined in this process; None when loaded from the registry
    (the store finds it by module and fingerprint, see the module doc)."""

    def __init__(
        self,
        name: str,
        *,
        sources: Sequence[Source | ViewInput],
        schema: Sequence[Field],
        udf: Callable[..., Any] | UdfRef,
        mode: Mode = "pandas",
        singleton: bool = False,
        description: str = "",
        owner: str = "",
        tags: dict[str, str] | None = None,
        version: int | None = None,
    ):
        check_name("on-demand feature view", name)
        where = f"on-demand feature view {name!r}"
        if mode not in MODES:
            raise DefinitionError(f"{where}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if singleton and mode != "python":
            raise DefinitionError(f"{where}: singleton=True needs mode='python'")
        if not isinstance(sources, Sequence) or isinstance(sources, str) or not sources:
            raise DefinitionError(f"{where}: sources must be a non-empty list of feature views and request sources")
        inputs: list[ViewInput | RequestSource] = []
        for source in sources:
            if isinstance(source, FeatureView):
                inputs.append(ViewInput(source.name, source.schema, source.join_keys))
            elif isinstance(source, FeatureViewProjection):
                fv = source.view
                inputs.append(ViewInput(fv.name, tuple(fv.feature(f) for f in source.features), fv.join_keys))
            elif isinstance(source, (RequestSource, ViewInput)):
                inputs.append(source)
            else:
                raise DefinitionError(
                    f"{where}: a source must be a FeatureView, view[[...]] or RequestSource, got {source!r}"
                )
        seen_views = [s.view for s in inputs if isinstance(s, ViewInput)]
        if len(set(seen_views)) != len(seen_views):
            raise DefinitionError(f"{where}: a feature view appears twice in sources; list its features once")
        if not isinstance(schema, Sequence) or not schema or not all(isinstance(f, Field) for f in schema):
            raise DefinitionError(f"{where}: schema must be a non-empty list of Field")
        outputs = [f.name for f in schema]
        dup = sorted({n for n in outputs if outputs.count(n) > 1})
        if dup:
            raise DefinitionError(f"{where}: output field {dup[0]!r} appears twice in the schema")
        reserved = sorted(set(outputs) & RESERVED_COLUMNS)
        if reserved:
            raise DefinitionError(f"{where}: output field {reserved[0]!r} is a reserved column name")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "sources", tuple(inputs))
        set_(self, "schema", tuple(schema))
        set_(self, "mode", mode)
        set_(self, "singleton", bool(singleton))
        set_(self, "description", str(description))
        set_(self, "owner", str(owner))
        set_(self, "tags", check_tags(where, tags or {}))
        set_(self, "version", version)
        self._check_input_names(where)
        if isinstance(udf, UdfRef):
            set_(self, "udf_ref", udf)
            set_(self, "udf", find_function(udf.module, udf.qualname, udf.fingerprint))
        else:
            ref = udf_ref(udf, where)
            set_(self, "udf_ref", ref)
            set_(self, "udf", udf)
            _FUNCTIONS[(ref.module, ref.qualname, ref.fingerprint)] = udf

    def _check_input_names(self, where: str) -> None:
        key_types: dict[str, Field] = {}
        for view in self.view_inputs:
            for key in view.join_keys:
                if key_types.setdefault(key.name, key).dtype != key.dtype:
                    raise DefinitionError(f"{where}: join key {key.name!r} has two different types in its sources")
        taken: dict[str, str] = {}
        for column, origin in self.input_columns():
            if column in taken and taken[column] != origin:
                raise DefinitionError(
                    f"{where}: input column {column!r} would come from both {taken[column]} and {origin}; "
                    "rename one of them"
                )
            taken[column] = origin

    def input_columns(self) -> list[tuple[str, str]]:
        """(input column, where it comes from) for every input, in order: join keys first."""
        views = [s for s in self.sources if isinstance(s, ViewInput)]
        prefixed = len(views) > 1
        out: list[tuple[str, str]] = []
        keys = dict.fromkeys(k.name for view in views for k in view.join_keys)
        out.extend((k, f"join key {k!r}") for k in keys)
        for s in self.sources:
            if isinstance(s, ViewInput):
                out.extend(
                    (f"{s.view}__{f.name}" if prefixed else f.name, f"feature view {s.view!r}") for f in s.features
                )
            else:
                out.extend((f.name, f"request source {s.name!r}") for f in s.schema)
        return out

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    def __getitem__(self, features: Sequence[str]) -> OnDemandProjection:
        """Select some outputs, Feast style: ``odfv[["a"]]`` (for a `FeatureService`)."""
        return OnDemandProjection(self, tuple(features))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The outputs' names, in schema order."""
        return tuple(f.name for f in self.schema)

    @property
    def view_inputs(self) -> tuple[ViewInput, ...]:
        """The stored features the function reads, per feature view."""
        return tuple(s for s in self.sources if isinstance(s, ViewInput))

    @property
    def request_sources(self) -> tuple[RequestSource, ...]:
        """The request sources whose fields every request must carry."""
        return tuple(s for s in self.sources if isinstance(s, RequestSource))

    def feature(self, name: str) -> Field:
        """One output's `Field`; a `DefinitionError` if the view has no output of that name."""
        for f in self.schema:
            if f.name == name:
                return f
        raise DefinitionError(f"on-demand feature view {self.name!r} has no feature {name!r}")

    def with_version(self, version: int) -> OnDemandFeatureView:
        """A copy stamped with its registry version."""
        copy = object.__new__(OnDemandFeatureView)
        copy.__dict__.update(self.__dict__)
        object.__setattr__(copy, "version", version)
        return copy

    def to_spec(self) -> dict[str, Any]:
        """The definition as plain data: the function as its source text and fingerprint."""
        return {
            "name": self.name,
            "sources": [s.to_spec() for s in self.sources],
            "schema": [f.to_spec() for f in self.schema],
            "mode": self.mode,
            "singleton": self.singleton,
            "udf": self.udf_ref.to_spec(),
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any], *, version: int | None = None) -> OnDemandFeatureView:
        """Rebuild from `to_spec` data; the function is found later, when the view runs."""
        sources: list[ViewInput | RequestSource] = [
            RequestSource.from_spec(s) if s["type"] == "request" else ViewInput.from_spec(s) for s in spec["sources"]
        ]
        return cls(
            spec["name"],
            sources=sources,
            schema=[Field.from_spec(f) for f in spec["schema"]],
            udf=UdfRef(**spec["udf"]),
            mode=spec.get("mode", "pandas"),
            singleton=spec.get("singleton", False),
            description=spec.get("description", ""),
            owner=spec.get("owner", ""),
            tags=spec.get("tags"),
            version=version,
        )


@dataclass(frozen=True)
class OnDemandProjection:
    """Some outputs of an on-demand view, as selected by ``odfv[["a", "b"]]``."""

    view: OnDemandFeatureView
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.features:
            raise DefinitionError(f"selection of on-demand feature view {self.view.name!r} is empty")
        for name in self.features:
            self.view.feature(name)


def function_source(fn: Callable[..., Any], where: str) -> str:
    """The source text of `fn` without its decorators, dedented: what the fingerprint covers."""
    if not inspect.isfunction(fn):
        raise DefinitionError(f"{where}: the transformation must be a Python function, got {fn!r}")
    if fn.__name__ == "<lambda>":
        raise DefinitionError(f"{where}: the transformation must be a def function, not a lambda")
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise DefinitionError(
            f"{where}: the source of function {fn.__qualname__!r} cannot be read ({exc}); define it in a module file"
        ) from None
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    node = tree.body[0] if tree.body else None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
        return "\n".join(text.splitlines()[node.lineno - 1 : node.end_lineno]) + "\n"
    return text


def udf_ref(fn: Callable[..., Any], where: str) -> UdfRef:
    source = function_source(fn, where)
    digest = hashlib.sha256(source.encode()).hexdigest()[:32]
    return UdfRef(fn.__name__, fn.__module__, fn.__qualname__, source, digest)


def on_demand_feature_view(
    *,
    sources: Sequence[Source],
    schema: Sequence[Field],
    mode: Mode = "pandas",
    singleton: bool = False,
    name: str | None = None,
    description: str = "",
    owner: str = "",
    tags: dict[str, str] | None = None,
) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:
    """Decorator making an `OnDemandFeatureView` of a function, named after it (Feast's spelling).

    >>> @on_demand_feature_view(sources=[txn], schema=[Field("double", Float64)], mode="python", singleton=True)
    ... def doubled(row):  # doctest: +SKIP
    ...     return {"double": row["amount"] * 2}
    """

    def wrap(fn: Callable[..., Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name or fn.__name__,
            sources=sources,
            schema=schema,
            udf=fn,
            mode=mode,
            singleton=singleton,
            description=description or (inspect.getdoc(fn) or "").strip(),
            owner=owner,
            tags=tags,
        )

    return wrap
