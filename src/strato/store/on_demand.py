"""On-demand feature views at read time: one computation for serving and for training.

A request naming ``odfv:feature`` is split in two: the features of stored views, read as
usual (`OnlineReader` online, the point-in-time join offline), and the on-demand views,
whose inputs — their source views' features, join keys and request fields — are read
alongside and assembled into one Arrow table typed as the view declares. `run` then calls
the view's function on that table and checks what it returns against the declared schema.
Online and offline differ only in where the input columns come from (an `OnlineResponse`
and the entity rows, or a training set's columns); the table and the function are the same,
so the two agree on the same inputs.

Failures are the caller's to read: a missing or mistyped request field is a `UserError`
naming the field; an exception raised by the function, or an output that does not match
the schema, is a `TransformationError` naming the view (and the column).

A request without on-demand views costs one registry-generation check and a dict lookup
before the usual read.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from strato import frames
from strato.access import Resource
from strato.definitions.feature_service import FeatureService
from strato.definitions.field import Field
from strato.definitions.on_demand import OnDemandFeatureView, ViewInput, find_function
from strato.errors import SchemaError, TransformationError, UserError
from strato.online.response import OnlineResponse
from strato.refs import ViewSelection, parse_refs
from strato.store.catalog import Catalog
from strato.store.online_reads import OnlineReader, _entity_rows
from strato.store.results import TrainingSet
from strato.types import Kind, ReadStatus

if TYPE_CHECKING:
    import pandas as pd

_NUMERIC_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_timestamp)


@dataclass(frozen=True)
class _Input:
    """One input column of an on-demand view: its name, where it comes from, its field."""

    column: str
    kind: str  # "key", "feature" or "request"
    source: str  # the full feature name (``view__feature``) for features, else the field name
    field: Field
    origin: str  # for messages: "request source 'txn'", "feature view 'user_stats'"


@dataclass(frozen=True)
class _Computed:
    """One requested on-demand view: which outputs, under which names."""

    view: OnDemandFeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    inputs: tuple[_Input, ...]


@dataclass(frozen=True)
class _Request:
    """A feature list split into stored-view and on-demand parts (cached per list)."""

    segments: tuple[tuple[str, int], ...]
    """In request order: ("plain", index of the stored view's part) or ("odfv", index in `computed`)."""
    plain: tuple[str, ...]
    plain_selections: tuple[ViewSelection, ...]
    computed: tuple[_Computed, ...]
    input_refs: tuple[str, ...]
    """Every stored feature some requested on-demand view reads, as ``view:feature``."""
    input_names: dict[str, str] | None
    """When the stored features requested include every input: ``view__feature`` → its
    column in their response, so the inputs come from that one read (else None)."""
    plain_first: bool
    """Every stored-view part comes before every on-demand part (the response's fast path)."""


def _ref(selection: ViewSelection, feature: str) -> str:
    pinned = f"@v{selection.version}" if selection.version is not None else ""
    return f"{selection.view}{pinned}:{feature}"


def _inputs(view: OnDemandFeatureView) -> tuple[_Input, ...]:
    """The view's input columns, named as the function sees them (Feast's naming)."""
    out: list[_Input] = []
    sources = view.view_inputs
    prefixed = len(sources) > 1
    keys: dict[str, Field] = {}
    for view_input in sources:
        for k in view_input.join_keys:
            keys.setdefault(k.name, k)
    out.extend(_Input(k.name, "key", k.name, k, f"join key {k.name!r}") for k in keys.values())
    for s in view.sources:
        if isinstance(s, ViewInput):
            for f in s.features:
                column = f"{s.view}__{f.name}" if prefixed else f.name
                out.append(_Input(column, "feature", f"{s.view}__{f.name}", f, f"feature view {s.view!r}"))
        else:
            out.extend(_Input(f.name, "request", f.name, f, f"request source {s.name!r}") for f in s.schema)
    return tuple(out)


class OnDemand:
    """Runs a store's on-demand views in `get_online_features` and `get_historical_features`."""

    def __init__(self, catalog: Catalog, reader: OnlineReader, repo_path: Path):
        self._catalog = catalog
        self._reader = reader
        self._repo_path = repo_path
        self._generation = -1
        self._views: dict[str, OnDemandFeatureView] = {}
        self._requests: dict[tuple[tuple[str, ...], bool], _Request | None] = {}
        self._last: tuple[object, bool, object, _Request | None] | None = None
        self._functions: dict[tuple[str, str, str], Callable[..., Any]] = {}
        self._resources: dict[tuple[str, ...], tuple[Resource, ...]] = {}

    # ------------------------------------------------------------------ definitions

    def views(self) -> dict[str, OnDemandFeatureView]:
        """The registry's on-demand views by name, re-read when the catalog's generation moves."""
        generation = self._catalog.fresh()
        if generation != self._generation:
            listed = self._catalog.registry.list("on_demand_feature_view")
            self._views = {v.name: v for v in listed if isinstance(v, OnDemandFeatureView)}
            self._requests.clear()
            self._resources.clear()
            self._last = None
            self._generation = generation
        return self._views

    def resources(self, features: Sequence[str] | FeatureService) -> tuple[Resource, ...]:
        """What a read of `features` must be allowed, online or offline, in the SDK and the server.

        A service is granted as itself (whatever it draws from). A list of references needs
        each view it names; an on-demand view among them needs read on itself and on every
        view it reads from, since its output discloses their values.
        """
        if isinstance(features, FeatureService):
            return (Resource("feature_service", features.name),)
        views = self.views()
        key = tuple(features) if not isinstance(features, str) else (features,)
        found = self._resources.get(key)
        if found is None:
            needed: dict[Resource, None] = {}
            for selection in parse_refs(features):
                needed[Resource("feature_view", selection.view)] = None
                odfv = views.get(selection.view)
                if odfv is not None:
                    needed.update(dict.fromkeys(Resource("feature_view", s.view) for s in odfv.view_inputs))
            found = self._resources[key] = tuple(needed)
        return found

    def _request(self, features: Sequence[str] | FeatureService, full_names: bool) -> _Request | None:
        """The split of `features`, or None when it names no on-demand view."""
        views = self.views()
        if not views:
            return None
        last = self._last
        if last is not None and last[0] is features and last[1] == full_names and last[2] == features:
            return last[3]
        refs = tuple(features.feature_refs) if isinstance(features, FeatureService) else tuple(features)
        key = (refs, full_names)
        if key not in self._requests:
            self._requests[key] = self._split(features, full_names, views)
        request = self._requests[key]
        snapshot = features if isinstance(features, (FeatureService, tuple)) else list(features)
        self._last = (features, full_names, snapshot, request)
        return request

    def _split(
        self, features: Sequence[str] | FeatureService, full_names: bool, views: Mapping[str, OnDemandFeatureView]
    ) -> _Request | None:
        selections = parse_refs(features)
        if not any(s.view in views for s in selections):
            return None
        segments: list[tuple[str, int]] = []
        plain: list[str] = []
        plain_selections: list[ViewSelection] = []
        computed: list[_Computed] = []
        input_refs: dict[str, None] = {}
        for selection in selections:
            odfv = views.get(selection.view)
            if odfv is None:
                segments.append(("plain", len(plain_selections)))
                plain_selections.append(selection)
                plain.extend(_ref(selection, f) for f in selection.features)
                continue
            if selection.version is not None:
                raise UserError(
                    f"on-demand feature view {odfv.name!r} has no pinned versions: "
                    f"ask for {odfv.name}:{selection.features[0]}"
                )
            for feature in selection.features:
                if feature not in odfv.feature_names:
                    raise UserError(
                        f"on-demand feature view {odfv.name!r} has no feature {feature!r}; "
                        f"it has {list(odfv.feature_names)}"
                    )
            names = tuple(f"{odfv.name}__{f}" if full_names else f for f in selection.features)
            segments.append(("odfv", len(computed)))
            computed.append(_Computed(odfv, selection.features, names, _inputs(odfv)))
            for source in odfv.view_inputs:
                input_refs.update(dict.fromkeys(f"{source.view}:{f.name}" for f in source.features))
        plain_names = {
            f"{sel.view}:{f}": f"{sel.view}__{f}" if full_names else f
            for sel in plain_selections
            if sel.version is None
            for f in sel.features
        }
        input_names = (
            {ref.replace(":", "__"): plain_names[ref] for ref in input_refs}
            if all(ref in plain_names for ref in input_refs)
            else None
        )
        kinds = [kind for kind, _ in segments]
        plain_first = "plain" not in kinds[kinds.index("odfv") :]
        request = _Request(
            tuple(segments),
            tuple(plain),
            tuple(plain_selections),
            tuple(computed),
            tuple(input_refs),
            input_names,
            plain_first,
        )
        self._check_inputs(request)
        return request

    def _check_inputs(self, request: _Request) -> None:
        """Each input feature must still exist in its view with the type the on-demand view
        was defined with: otherwise the function would see other data than at apply time."""
        for part in request.computed:
            for source in part.view.view_inputs:
                fv = self._catalog.view(source.view)
                for f in source.features:
                    if f.name not in fv.feature_names or fv.feature(f.name).dtype != f.dtype:
                        now = fv.feature(f.name).dtype if f.name in fv.feature_names else "missing"
                        raise UserError(
                            f"on-demand feature view {part.view.name!r} reads {source.view}:{f.name} as {f.dtype}, "
                            f"but the view now has it {now}; apply the on-demand view again"
                        )

    def involves(self, features: Sequence[str] | FeatureService, full_names: bool) -> bool:
        """Whether `features` names an on-demand view (so the caller must go through here)."""
        return self._request(features, full_names) is not None

    def function(self, view: OnDemandFeatureView) -> Callable[..., Any]:
        """The view's function: defined in this process, or imported from its module.

        The module is imported with the feature repo's folder first on ``sys.path`` (as
        `strato apply` loaded it); the repo's modules are forgotten again afterwards, so
        two repos in one process never mix. The function found must have the applied
        fingerprint: a server never runs code other than what was applied.
        """
        ref = view.udf_ref
        key = (ref.module, ref.qualname, ref.fingerprint)
        fn = self._functions.get(key) or view.udf or find_function(*key)
        if fn is None:
            problem = self._import(ref.module)
            fn = find_function(*key)
            if fn is None:
                found = problem or "it holds a different version of the function (its fingerprint differs)"
                raise TransformationError(
                    f"on-demand feature view {view.name!r}: its function {ref.module}.{ref.qualname} "
                    f"(fingerprint {ref.fingerprint[:12]}) cannot be found here: importing {ref.module!r} from "
                    f"{self._repo_path}: {found}; run where the applied definitions are importable, or apply again",
                    view=view.name,
                )
        self._functions[key] = fn
        return fn

    def _import(self, module: str) -> str | None:
        """Import `module` from the repo; None on success, else what went wrong."""
        repo = str(self._repo_path.resolve())
        before = set(sys.modules)
        sys.path.insert(0, repo)
        importlib.invalidate_caches()
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"{type(exc).__name__}: {' '.join(str(exc).splitlines())}"
        finally:
            with suppress(ValueError):
                sys.path.remove(repo)
            for name in set(sys.modules) - before:
                file = getattr(sys.modules.get(name), "__file__", None) or ""
                if file and Path(file).resolve().is_relative_to(repo):
                    del sys.modules[name]
        return None

    # ------------------------------------------------------------------ online

    def get(
        self,
        features: Sequence[str] | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool,
    ) -> OnlineResponse:
        """`get_online_features`, with on-demand views computed from the same read."""
        request = self._request(features, full_feature_names)
        if request is None:
            return self._reader.get(features, entity_rows, full_feature_names)
        self._reader.authorize(self.resources(features))  # the request as a whole: the reads below are covered
        rows = _entity_rows(entity_rows)
        if request.plain:
            base = self._reader.get(request.plain, rows, full_feature_names, checked=True)
        else:
            base = OnlineResponse(rows, (), [], 0)
        values: dict[str, list[Any]] = {}
        key_names = dict.fromkeys(base.key_names)
        base_dict = None
        if request.input_names is not None:  # the inputs are among the features read: one read
            base_dict = base.to_dict()
            values = {full: base_dict[name] for full, name in request.input_names.items()}
        elif request.input_refs:
            inputs = self._reader.get(request.input_refs, rows, True, checked=True)
            values = inputs.to_dict()
            key_names.update(dict.fromkeys(inputs.key_names))
        outputs = []
        for part in request.computed:
            table = online_inputs(part, rows, values)
            outputs.append(run(part.view, self.function(part.view), table, part.features, len(rows)))
        response = OnDemandResponse(base, rows, tuple(key_names), request, outputs, time.time_ns() // 1000)
        response._base_dict = base_dict
        return response

    # ------------------------------------------------------------------ offline

    def historical(
        self,
        base: Callable[..., TrainingSet],
        entity_df: Any,
        features: Sequence[str] | FeatureService,
        full_feature_names: bool,
        **options: Any,
    ) -> TrainingSet:
        """`get_historical_features` with on-demand views: one point-in-time join of every
        stored feature needed (full names, so nothing clashes), then each view's function
        over the joined columns and the entity frame's request fields."""
        request = self._request(features, full_feature_names)
        assert request is not None
        wanted = list(dict.fromkeys([*request.plain, *request.input_refs]))
        if wanted:
            joined = base(entity_df, wanted, full_feature_names=True, **options)
            table, versions = joined.table, joined.versions
            feature_columns = set(joined.feature_names)
        else:
            spine = frames.to_arrow(entity_df, what="entity_df")
            table, versions, feature_columns = spine, {}, set()
        entity_columns = [c for c in table.column_names if c not in feature_columns]
        names = list(entity_columns)
        arrays: list[Any] = [table.column(c) for c in entity_columns]
        plain_full = self._catalog.select(list(request.plain), True) if request.plain else []
        plain_user = self._catalog.select(list(request.plain), full_feature_names) if request.plain else []
        output: list[str] = []
        for kind, index in request.segments:
            if kind == "plain":
                pairs = zip(plain_full[index][2], plain_user[index][2], strict=True)
                for full, user in pairs:
                    names.append(user)
                    arrays.append(table.column(full))
                    output.append(user)
                continue
            part = request.computed[index]
            inputs = offline_inputs(part, table)
            result = run(part.view, self.function(part.view), inputs, part.features, table.num_rows)
            for feature, name in zip(part.features, part.output_names, strict=True):
                names.append(name)
                arrays.append(result.column(feature))
                output.append(name)
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise UserError(
                f"columns {clash} appear twice in the training set; "
                "pass full_feature_names=True to prefix features with their view name"
            )
        return TrainingSet(pa.Table.from_arrays(arrays, names=names), versions, tuple(output))


# ---------------------------------------------------------------------- inputs and runs


_PLAIN = {Kind.FLOAT64: float, Kind.INT64: int, Kind.STRING: str, Kind.BOOL: bool, Kind.BYTES: bytes}
"""The Python type each of these kinds reads back as: a list of only those (and None) is
already what Arrow's conversion would give, so it needs no checking."""


def _plain(values: Any, field: Field) -> bool:
    """Whether `values` is a list whose every item is None or `field`'s own Python type."""
    want = _PLAIN.get(field.dtype.kind)
    return want is not None and isinstance(values, list) and all(v is None or type(v) is want for v in values)


def _column(values: Any, field: Field, where: str) -> pa.ChunkedArray | pa.Array:
    """Values as `field`'s type, under Strato's one coercion rule (`frames`)."""
    if _plain(values, field):
        return pa.array(values, type=field.dtype.to_arrow())
    if isinstance(values, pa.ChunkedArray):
        column = values
    elif isinstance(values, pa.Array):
        column = pa.chunked_array([values], type=values.type)
    else:
        array = pa.array(values, type=field.dtype.to_arrow() if field.dtype.kind.value == "map" else None)
        column = pa.chunked_array([array], type=array.type)
    return frames._cast_column(column, field, where)


def online_inputs(
    part: _Computed, rows: Sequence[Mapping[str, Any]], values: Mapping[str, list[Any]]
) -> pa.Table | dict[str, list[Any]]:
    """The inputs of one on-demand view from the entity rows and the stored features read.

    A table; for a ``python`` view the same as Python lists (``to_pydict``'s values: stored
    features are already those values, as `OnlineResponse.to_dict` guarantees, so they skip
    Arrow; request fields and keys go through it, to be coerced as offline).
    """
    name = part.view.name
    python = part.view.mode == "python"
    columns: list[Any] = []
    for item in part.inputs:
        if item.kind == "feature":
            if python:
                columns.append(values[item.source])
                continue
            column = _column(pa.array(values[item.source], type=item.field.dtype.to_arrow()), item.field, name)
        else:
            try:
                raw = [row[item.source] for row in rows]
                if python and _plain(raw, item.field):  # what Arrow would give back: no round trip
                    columns.append(raw)
                    continue
            except KeyError:
                raise UserError(
                    f"entity_rows: missing {'request field' if item.kind == 'request' else 'join key'} "
                    f"{item.source!r}, needed by on-demand feature view {name!r} ({item.origin})"
                ) from None
            try:
                column = _column(raw, item.field, f"entity_rows, request field {item.source!r} of {name!r}")
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise SchemaError(
                    f"entity_rows, request field {item.source!r} of on-demand feature view {name!r}: "
                    f"values do not fit {item.field.dtype} ({' '.join(str(exc).splitlines())[:200]})"
                ) from None
        columns.append(column.to_pylist() if python else column)
    names = [i.column for i in part.inputs]
    if python:
        return dict(zip(names, columns, strict=True))
    return pa.Table.from_arrays(columns, names=names)


def offline_inputs(part: _Computed, table: pa.Table) -> pa.Table:
    """The input table of one on-demand view from a training set's columns (request fields
    are columns of the entity frame, features are the join's ``view__feature`` columns)."""
    name = part.view.name
    columns = []
    for item in part.inputs:
        if item.source not in table.column_names:
            what = "request field" if item.kind == "request" else "join key"
            raise UserError(
                f"entity_df: missing column {item.source!r}, the {what} {item.source!r} that on-demand "
                f"feature view {name!r} needs ({item.origin})"
            )
        columns.append(_column(table.column(item.source), item.field, f"entity_df, request field {item.source!r}"))
    return pa.Table.from_arrays(columns, names=[i.column for i in part.inputs])


def run(
    view: OnDemandFeatureView,
    fn: Callable[..., Any],
    inputs: pa.Table | dict[str, list[Any]],
    features: Sequence[str],
    n: int,
) -> pa.Table:
    """Call the view's function on `inputs` (`n` rows); its declared outputs (those in
    `features`), typed. The one place a transformation runs, online and offline alike."""
    if isinstance(inputs, pa.Table) and view.mode == "python":
        inputs = inputs.to_pydict()
    wanted = [view.feature(f) for f in features]
    if n == 0:
        return pa.table({f.name: pa.array([], type=f.dtype.to_arrow()) for f in wanted})
    try:
        if isinstance(inputs, pa.Table):
            result: Any = fn(inputs.to_pandas() if view.mode == "pandas" else inputs)
        elif view.singleton:
            names = list(inputs)
            result = [fn(dict(zip(names, values, strict=True))) for values in zip(*inputs.values(), strict=True)]
        else:
            result = fn(inputs)
    except Exception as exc:
        message = " ".join(str(exc).splitlines())[:300]
        raise TransformationError(
            f"on-demand feature view {view.name!r}: its function {view.udf_ref.qualname}() raised "
            f"{type(exc).__name__}: {message}",
            view=view.name,
        ) from exc
    columns = _result_columns(view, result, n, [f.name for f in wanted])
    arrays = []
    for f in wanted:
        try:
            arrays.append(_column(columns[f.name], f, f"on-demand feature view {view.name!r}, output {f.name!r}"))
        except SchemaError as exc:
            raise TransformationError(str(exc), view=view.name) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise TransformationError(
                f"on-demand feature view {view.name!r}, output {f.name!r}: values do not fit {f.dtype} "
                f"({' '.join(str(exc).splitlines())[:200]})",
                view=view.name,
            ) from None
    return pa.Table.from_arrays(arrays, names=[f.name for f in wanted])


def _result_columns(view: OnDemandFeatureView, result: Any, n: int, names: list[str]) -> dict[str, Any]:
    """The function's result as {output: column}, checked for shape (columns present, n rows)."""
    where = f"on-demand feature view {view.name!r}"
    columns: dict[str, Any] = {}
    if view.mode == "python" and view.singleton:
        for i, row in enumerate(result):
            if not isinstance(row, Mapping):
                raise TransformationError(
                    f"{where}: its function must return a dict per row, got {type(row).__name__} for row {i}",
                    view=view.name,
                )
            missing = [c for c in names if c not in row]
            if missing:
                raise TransformationError(
                    f"{where}: its function returned no {missing[0]!r} for row {i} (declared in its schema); "
                    f"it returned {sorted(map(str, row))}",
                    view=view.name,
                )
        return {c: [row[c] for row in result] for c in names}
    if view.mode == "pandas":
        import pandas as pd

        if not isinstance(result, pd.DataFrame):
            raise TransformationError(
                f"{where}: its function must return a pandas DataFrame, got {type(result).__name__}", view=view.name
            )
        have = [str(c) for c in result.columns]
        get: Callable[[str], Any] = lambda c: pa.Array.from_pandas(result[c])  # noqa: E731
    elif isinstance(result, (pa.Table, pa.RecordBatch)):
        have = list(result.schema.names)
        get = result.column
    elif isinstance(result, Mapping):
        have = [str(c) for c in result]
        get = result.__getitem__
    else:
        wanted_type = "a dict of columns" if view.mode == "python" else "a pyarrow Table"
        raise TransformationError(
            f"{where}: its function must return {wanted_type}, got {type(result).__name__}", view=view.name
        )
    for c in names:
        if c not in have:
            raise TransformationError(
                f"{where}: its function returned no column {c!r} (declared in its schema); it returned {have}",
                view=view.name,
            )
        column = get(c)
        if isinstance(column, np.ndarray):
            column = column.tolist()
        if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
            raise TransformationError(
                f"{where}: output {c!r} must be a column of {n} values, got {type(column).__name__}", view=view.name
            )
        if len(column) != n:
            raise TransformationError(
                f"{where}: output {c!r} has {len(column)} values for {n} entity rows", view=view.name
            )
        columns[c] = column
    return columns


# ---------------------------------------------------------------------- the response


class OnDemandResponse(OnlineResponse):
    """An online response with on-demand outputs among the stored features, in request order.

    Stored features keep their statuses; an on-demand value is PRESENT (computed now, with
    the request time as its event time), null where the function returned null.
    """

    def __init__(
        self,
        base: OnlineResponse,
        rows: Sequence[Mapping[str, Any]],
        key_names: tuple[str, ...],
        request: _Request,
        outputs: list[pa.Table],
        now_us: int,
    ):
        super().__init__(rows, key_names, [], 0)
        self._base = base
        self._request = request
        self._outputs = outputs
        self._now_us = now_us
        self._base_names = base.feature_names
        self._base_dict: dict[str, list[Any]] | None = None
        """The base's `to_dict`, when computing the inputs needed it (used once, by `to_dict`)."""
        bounds = [0]
        for part in base._parts:
            bounds.append(bounds[-1] + len(part.output_names))
        self._bounds = bounds

    def _segments(self) -> list[tuple[str, int, tuple[str, ...]]]:
        out = []
        for kind, index in self._request.segments:
            if kind == "plain":
                names = tuple(self._base_names[self._bounds[index] : self._bounds[index + 1]])
            else:
                names = self._request.computed[index].output_names
            out.append((kind, index, names))
        return out

    def _computed(self, index: int) -> list[tuple[str, pa.ChunkedArray]]:
        part = self._request.computed[index]
        table = self._outputs[index]
        return [(name, table.column(f)) for f, name in zip(part.features, part.output_names, strict=True)]

    @property
    def feature_names(self) -> list[str]:
        return [name for _, _, names in self._segments() for name in names]

    def to_dict(self) -> dict[str, list[Any]]:
        base, self._base_dict = self._base_dict or self._base.to_dict(), None
        if self._request.plain_first and self._key_names == self._base.key_names:
            for index in range(len(self._outputs)):
                base.update((name, column.to_pylist()) for name, column in self._computed(index))
            return base
        out = {
            k: base[k] if k in base else pa.array([row[k] for row in self._entity_rows]).to_pylist()
            for k in self._key_names
        }
        for kind, index, names in self._segments():
            if kind == "plain":
                out.update((name, base[name]) for name in names)
            else:
                out.update((name, column.to_pylist()) for name, column in self._computed(index))
        return out

    def to_arrow(self) -> pa.Table:
        base = self._base.to_arrow() if self._base._parts else None
        names = list(self._key_names)
        arrays: list[Any] = [
            base.column(k)
            if base is not None and k in base.column_names
            else pa.array([r[k] for r in self._entity_rows])
            for k in self._key_names
        ]
        for kind, index, segment in self._segments():
            if kind == "plain":
                assert base is not None
                names.extend(segment)
                arrays.extend(base.column(n) for n in segment)
            else:
                for name, column in self._computed(index):
                    names.append(name)
                    arrays.append(column)
        return pa.Table.from_arrays(arrays, names=names)

    def to_df(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()  # type: ignore[no-any-return]

    def to_numpy(self) -> npt.NDArray[np.float64]:
        base = self._base.to_numpy() if self._base._parts else None
        blocks: list[npt.NDArray[np.float64]] = []
        for kind, index, _ in self._segments():
            if kind == "plain":
                assert base is not None
                blocks.append(base[:, self._bounds[index] : self._bounds[index + 1]])
                continue
            for name, column in self._computed(index):
                if not any(test(column.type) for test in _NUMERIC_TYPES):
                    raise UserError(f"to_numpy() takes numeric features only; {name!r} is {column.type}")
                if pa.types.is_timestamp(column.type):
                    column = column.cast(pa.int64())
                values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
                blocks.append(np.asarray(values, dtype=np.float64).reshape(-1, 1))
        if not blocks:
            return np.empty((len(self._entity_rows), 0), dtype=np.float64)
        return np.hstack(blocks)

    def serving_parts(self) -> list[tuple[tuple[str, ...], list[list[Any]], list[int | None], int | None]]:
        base = self._base.serving_parts()
        out = []
        for kind, index, names in self._segments():
            if kind == "plain":
                out.append(base[index])
                continue
            columns = [column.to_pylist() for _, column in self._computed(index)]
            out.append((names, columns, [self._now_us] * len(self._entity_rows), None))
        return out

    def statuses(self) -> dict[str, list[ReadStatus]]:
        base = self._base.statuses()
        out: dict[str, list[ReadStatus]] = {}
        present = [ReadStatus.PRESENT] * len(self._entity_rows)
        for kind, _, names in self._segments():
            for name in names:
                out[name] = base[name] if kind == "plain" else present
        return out
