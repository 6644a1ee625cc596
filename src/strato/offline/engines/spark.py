"""Spark offline engine: point-in-time joins, latest values and history reads as Spark jobs over Delta.

The tables are the same Delta tables DuckDB reads, written by the same one writer
(`offline.delta`); Spark reads them natively through delta-spark, pinned to the snapshot's
version (``versionAsOf``), so a later commit never changes what a call sees (rule 5). When a
caller hands a snapshot restricted to some of its files (a schema change copies history in
chunks), only those files are read.

Point-in-time join (design rule 3), one pass per view, with no range join: the spine's rows
(row id, keys, t) and the view's history rows (keys, event time, created time, features) are
put in one frame, partitioned by the keys and sorted by (time, history before spine, created
time). For each spine row, the last history row before it in that order is its match:
``last(history, ignorenulls)`` over the window. History sorts before a spine row of the same
time (``event_timestamp <= t``), and among equal event times the greatest created time comes
last, so ties go to the latest write (rule 2) exactly as DuckDB's dedup-then-ASOF does. The ttl
then nulls a match older than ``t - ttl``; a spine row is never dropped. This is a sort of
spine + history per key, O(n log n), rather than a join that pairs every spine row with every
earlier history row of its key.

One SparkSession serves the whole process: it is started on the first job (JVM start and
jar resolution take seconds) and kept; closing an engine does not stop it, so the next
`FeatureStore` in the same process pays nothing. delta-spark's jars are resolved through
``spark.jars.packages`` into an Ivy cache outside the repository (``~/.cache/strato/ivy``).

User SQL is not offered (`Capabilities.sql` is False): Spark SQL reads any path it is given
(``SELECT * FROM parquet.`/etc```), and there is no sandbox for it; `strato sql` stays on DuckDB.
Batch transformations (`batch_query`, a SqlSource's one query over its declared inputs) are
offered: `spark_batch` checks each with Spark's parser and analyzer before it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from strato.errors import BackendFailure, BackendUnavailable, ConfigError, SchemaError, UserError
from strato.offline import storage
from strato.offline.base import BatchQuery, Capabilities, EngineOptions, OfflineEngine, TableSnapshot
from strato.offline.pit import PitRequest
from strato.offline.spine import CREATED_TS, EVENT_TS, cast, check_key_types, check_outputs, conform, utc_times

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: Internal names all start with "__strato", which no user name may (definitions._naming).
_RID = "__strato_rid"
_T = "__strato_t"
_KIND = "__strato_kind"
_C = "__strato_c"
_H = "__strato_h"
_M = "__strato_m"
_RN = "__strato_rn"
#: Rows per batch of `latest`'s stream, as DuckDB's: few big writes for the online bulk load.
_BATCH_ROWS = 131_072
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.0"
#: Hadoop's S3A connector, of the Hadoop version pyspark 4.0 bundles (hadoop-client 3.4.1).
HADOOP_AWS_PACKAGE = "org.apache.hadoop:hadoop-aws:3.4.1"


class SparkOptions(EngineOptions):
    """Options of the ``spark`` offline engine (``offline:`` in strato.yaml)."""

    master: str = "local[2]"
    """Where jobs run: ``local[N]`` (N cores of this machine) or a cluster URL such as ``spark://host:7077``."""

    app_name: str = "strato"
    """The application name shown by the cluster manager."""

    driver_memory: str = "1g"
    """Memory of the driver JVM (in ``local`` mode also the executors'), such as ``"4g"``."""

    shuffle_partitions: int = Field(default=4, ge=1)
    """``spark.sql.shuffle.partitions``: small for one machine, raise it on a cluster."""

    packages: str = DELTA_PACKAGE
    """Maven coordinates resolved into ``ivy_cache`` at start (``spark.jars.packages``); delta-spark at least."""

    object_store_packages: str = HADOOP_AWS_PACKAGE
    """Added to ``packages`` when ``offline.path`` is an object store (``s3://``): the S3A
    connector and, through it, the AWS SDK bundle (about 550 MB, resolved once into ``ivy_cache``)."""

    ivy_cache: str = "~/.cache/strato/ivy"
    """Where resolved jars are cached (``spark.jars.ivy``), outside the repository; ``~`` is expanded."""

    read: Literal["files", "delta"] = "files"
    """How Spark finds a snapshot's rows. ``files``: its exact Parquet file list, already resolved
    from the Delta log by the one writer's library, read with the snapshot's schema (no log
    replay in Spark: ~0.1 s a read here instead of ~2.5 s). ``delta``: through delta-spark at the
    snapshot's version (``versionAsOf``), Spark replaying the log itself."""

    conf: dict[str, str] = Field(default_factory=dict)
    """Any other Spark settings, passed as they are (they win over the ones above)."""


# ---------------------------------------------------------------------- the process's one session

_SESSION_LOCK = threading.Lock()
_SESSION: tuple[SparkOptions, SparkSession] | None = None


def session(options: SparkOptions, *, object_store: bool = False) -> SparkSession:
    """The process's SparkSession, started on first use with `options` and then reused.

    A second, different set of options in the same process is refused rather than silently
    ignored: Spark keeps one session configuration per JVM. `object_store` adds
    ``object_store_packages`` to the jars of a session it starts.
    """
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is not None:
            running_options, running = _SESSION
            if running.sparkContext._jsc is not None:  # not stopped
                if _session_settings(running_options) != _session_settings(options):
                    raise ConfigError(
                        "offline engine spark: a SparkSession with other options "
                        f"(master {running_options.master!r}) already runs in this process; "
                        "use one set of offline options per process"
                    )
                return running
        started = _start(options, object_store=object_store)
        _SESSION = (options, started)
        return started


#: Options that shape what one engine reads, not the session it runs on: engines differing only
#: in these share the process's session.
_ENGINE_ONLY = frozenset({"read"})


def _session_settings(options: SparkOptions) -> dict[str, Any]:
    return options.model_dump(exclude=set(_ENGINE_ONLY))


def stop_session() -> None:
    """Stop the process's SparkSession, if one runs (tests and long-lived hosts call this at exit)."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is not None:
            _SESSION[1].stop()
            _SESSION = None


def _start(options: SparkOptions, *, object_store: bool = False) -> SparkSession:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise BackendUnavailable("offline engine spark needs Java 17 or later: no java on PATH and no JAVA_HOME")
    from pyspark.sql import SparkSession

    packages = [p.strip() for p in options.packages.split(",") if p.strip()]
    if object_store:
        packages += [p.strip() for p in options.object_store_packages.split(",") if p.strip() not in packages]
    conf = {
        "spark.jars.packages": ",".join(dict.fromkeys(p for p in packages if p)),
        "spark.jars.ivy": os.path.expanduser(options.ivy_cache),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": options.driver_memory,
        "spark.sql.shuffle.partitions": str(options.shuffle_partitions),
        "spark.default.parallelism": str(options.shuffle_partitions),
        # Delta replays its log in this many tasks (default 50: seconds of overhead per table).
        "spark.databricks.delta.snapshotPartitions": str(options.shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Times leave Spark as timestamp[us, UTC] whatever the machine's zone.
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        # Feature names are case-sensitive in Strato, as in Delta's own schema.
        "spark.sql.caseSensitive": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        **options.conf,
    }
    builder = SparkSession.builder.master(options.master).appName(options.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        raise BackendUnavailable(f"offline engine spark did not start ({options.master}): {_one_line(exc)}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---------------------------------------------------------------------- the engine


class SparkOfflineEngine(OfflineEngine):
    """Runs each call as Spark jobs on the process's SparkSession (see the module doc)."""

    name: ClassVar[str] = "spark"
    options_model: ClassVar[type[EngineOptions]] = SparkOptions
    capabilities: ClassVar[Capabilities] = Capabilities(sql=False, quick_calls=False, frames=True, batch_queries=True)

    def __init__(self, options: SparkOptions) -> None:
        self._options = options
        self._closed = False
        self._object_store = False
        #: Buckets whose S3A settings this engine set, with the options it set them from.
        self._configured: dict[str, dict[str, str]] = {}

    @classmethod
    def open(cls, options: EngineOptions | None = None) -> Self:
        """Nothing starts yet: the session starts on the first job (see `session`)."""
        opts = options if isinstance(options, SparkOptions) else SparkOptions.model_validate(dict(options or {}))
        return cls(opts)

    def close(self) -> None:
        """This engine refuses further calls; the process's session stays up for the next one."""
        self._closed = True

    def serve_storage(self, root: str) -> None:
        """An object-store root loads the S3A connector with the session (`object_store_packages`)."""
        self._object_store = self._object_store or storage.is_remote(root)

    @property
    def spark(self) -> SparkSession:
        """The SparkSession this engine runs on (started now if it is not yet)."""
        if self._closed:
            raise BackendFailure("the spark offline engine is closed")
        return session(self._options, object_store=self._object_store)

    def _reach(self, snapshot: TableSnapshot) -> None:
        """Give Hadoop the snapshot's object-store settings (per bucket) before Spark reads it."""
        if not storage.is_remote(snapshot.path):
            return
        conf = storage.hadoop_conf(snapshot.path, snapshot.storage_options)
        bucket = urlparse(snapshot.path).netloc
        if self._configured.get(bucket) == conf:
            return
        spark = self.spark
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        from py4j.java_gateway import JavaClass  # type: ignore[import-untyped]

        if not isinstance(jvm.org.apache.hadoop.fs.s3a.S3AFileSystem, JavaClass):
            raise BackendFailure(
                f"offline engine spark cannot read {snapshot.path}: Hadoop's S3A connector is not loaded; "
                f"the session started without {self._options.object_store_packages} (start it with the "
                "store's offline.path an object store, or add it to offline.packages)"
            )
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        for key, value in conf.items():
            hadoop.set(key, value)
        self._configured[bucket] = conf

    def check(self) -> list[str]:
        """The session starts, Delta's classes load, and a job runs."""
        spark = self.spark
        problems = []
        with _mapped_errors():
            jvm = spark.sparkContext._jvm
            assert jvm is not None
            from py4j.java_gateway import JavaClass

            # As delta-spark's own Python API reaches it; a missing class is a JavaPackage instead.
            if not isinstance(jvm.io.delta.tables.DeltaTable, JavaClass):
                problems.append(
                    f"spark started but delta-spark's jars are missing (packages: {self._options.packages})"
                )
            if spark.range(1).count() != 1:
                problems.append("spark: a one-row job did not return one row")
        return problems

    # ------------------------------------------------------------------ point-in-time join

    def point_in_time_join(self, spine: pa.Table, requests: Sequence[PitRequest]) -> pa.Table:
        check_outputs(spine, requests)
        times = utc_times(spine)
        n = spine.num_rows
        if n == 0 or all(_unjoinable(r) for r in requests):
            return _append_nulls(spine, requests)
        with _mapped_errors():
            narrow = self._spine_frame(spine, times, narrow=True, requests=requests)
            joined, fetched = self._join(narrow, spine, times, requests)
            out_names = [name for names in fetched for name in names]
            result = joined.orderBy(_RID).select(*[_c(name) for name in out_names]).toArrow()
        if result.num_rows != n:  # cannot happen: one output row per spine row by construction
            raise BackendFailure(f"spark point-in-time join returned {result.num_rows} rows for {n} spine rows")
        out = spine
        for request, names in zip(requests, fetched, strict=True):
            for name, out_type in zip(request.output_names, request.output_types, strict=True):
                if name in names:
                    column = result.column(name)
                    what = f"{request.snapshot.name if request.snapshot else '?'}.{name}"
                    out = out.append_column(name, column if column.type == out_type else cast(column, out_type, what))
                else:
                    out = out.append_column(name, pa.nulls(n, out_type))
        return out

    def point_in_time_frame(
        self, spine: pa.Table, requests: Sequence[PitRequest], *, rename: Mapping[str, str] | None = None
    ) -> DataFrame:
        """The same join, left in Spark: a DataFrame of the spine's columns then each request's outputs.

        Nothing is collected to the driver; the frame is ordered as the spine. `rename` renames
        output columns (the store's ``timestamp_field``).
        """
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_type

        check_outputs(spine, requests)
        times = utc_times(spine)
        with _mapped_errors():
            full = self._spine_frame(spine, times, narrow=False, requests=requests)
            if spine.num_rows == 0 or all(_unjoinable(r) for r in requests):
                empty: list[list[Any]] = [[] for _ in requests]
                joined, fetched = full, empty
            else:
                joined, fetched = self._join(full, spine, times, requests)
            columns: list[Column] = [_c(name) for name in spine.column_names]
            for request, names in zip(requests, fetched, strict=True):
                for name, out_type in zip(request.output_names, request.output_types, strict=True):
                    spark_type = from_arrow_type(out_type)
                    column = _c(name) if name in names else F.lit(None)
                    columns.append(column.cast(spark_type).alias(name))
            frame = joined.orderBy(_RID).select(*columns)
            for old, new in (rename or {}).items():
                frame = frame.withColumnRenamed(old, new)
        return frame

    def _spine_frame(
        self, spine: pa.Table, times: pa.ChunkedArray, *, narrow: bool, requests: Sequence[PitRequest]
    ) -> DataFrame:
        """The spine in Spark with a row id and its µs UTC times; only keys when `narrow`."""
        n = spine.num_rows
        keys = list(dict.fromkeys(k for r in requests for k in r.join_keys))
        columns: dict[str, Any] = {_RID: pa.array(np.arange(n, dtype=np.int64)), _T: times}
        for name in spine.column_names if not narrow else keys:
            column = spine.column(name)
            if name == EVENT_TS and not narrow:
                column = times  # Spark keeps µs: the frame's times are the join's
            elif pa.types.is_unsigned_integer(column.type) or (name in keys and pa.types.is_integer(column.type)):
                column = cast(column, pa.int64(), f"entity_df.{name}")
            elif pa.types.is_large_string(column.type) or pa.types.is_string_view(column.type):
                column = column.cast(pa.string())
            columns[name] = column
        table = pa.table(columns)
        try:
            return self.spark.createDataFrame(table)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"entity_df cannot be handed to Spark: {_one_line(exc)}") from exc

    def _join(
        self, base: DataFrame, spine: pa.Table, times: pa.ChunkedArray, requests: Sequence[PitRequest]
    ) -> tuple[DataFrame, list[list[str]]]:
        """`base` left-joined on row id with each request's fetched outputs; their names per request."""
        bounds = pc.min_max(times.cast(pa.int64())).as_py()
        fetched: list[list[str]] = []
        joined = base
        for request in requests:
            matched = self._join_view(base, spine.schema, request, bounds["min"], bounds["max"])
            if matched is None:
                fetched.append([])
                continue
            frame, names = matched
            joined = joined.join(frame, on=_RID, how="left")
            fetched.append(names)
        return joined, fetched

    def _join_view(
        self, spine: DataFrame, spine_schema: pa.Schema, request: PitRequest, low: int, high: int
    ) -> tuple[DataFrame, list[str]] | None:
        """(row id, output columns fetched) for one view, one row per spine row; None: all null."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        snapshot = request.snapshot
        if snapshot is None or not snapshot.files:
            return None
        history = self._history(snapshot)
        present = set(history.columns)
        for name in (*request.join_keys, EVENT_TS, CREATED_TS):
            if name not in present:
                raise SchemaError(f"table {snapshot.name!r} has no column {name!r}; it has {sorted(present)}")
        check_key_types(spine_schema, request, snapshot)
        pairs = [(f, o) for f, o in zip(request.features, request.output_names, strict=True) if f in present]
        if not pairs:
            return None
        fetch = list(dict.fromkeys(f for f, _ in pairs))
        keys = list(request.join_keys)
        key_alias = [f"__strato_k{i}" for i in range(len(keys))]
        ttl_us = None if request.ttl is None else request.ttl // _MICROSECOND
        # Rows after the last spine time (or, with a ttl, too old for the first) can never match;
        # saying so lets Delta skip files by their statistics.
        event = _c(EVENT_TS)
        wanted = event <= F.timestamp_micros(F.lit(high))
        if ttl_us is not None:
            wanted &= event >= F.timestamp_micros(F.lit(low - ttl_us))
        for key in keys:
            wanted &= _c(key).isNotNull()
        values = F.struct(
            event.alias("e"), _c(CREATED_TS).alias("c"), *[_c(f).alias(f"f{i}") for i, f in enumerate(fetch)]
        )
        hist = history.where(wanted).select(
            *[_c(k).alias(a) for k, a in zip(keys, key_alias, strict=True)],
            event.alias(_T),
            F.lit(0).alias(_KIND),
            _c(CREATED_TS).alias(_C),
            values.alias(_H),
            F.lit(None).cast("long").alias(_RID),
        )
        types = dict(hist.dtypes)
        rows = spine.select(
            *[_c(k).cast(types[a]).alias(a) for k, a in zip(keys, key_alias, strict=True)],
            _c(_T),
            F.lit(1).alias(_KIND),
            F.lit(None).cast("timestamp").alias(_C),
            F.lit(None).cast(hist.schema[_H].dataType).alias(_H),
            _c(_RID),
        )
        order = Window.partitionBy(*key_alias).orderBy(_T, _KIND, _C)
        before = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        matched = (
            hist.unionByName(rows).withColumn(_M, F.last(_H, ignorenulls=True).over(before)).where(F.col(_KIND) == 1)
        )
        match = F.col(_M)
        if ttl_us is not None:
            fresh = F.unix_micros(match["e"]) >= F.unix_micros(F.col(_T)) - F.lit(ttl_us)
            match = F.when(fresh, match)
        names = [o for _, o in pairs]
        out = matched.select(_c(_RID), *[match[f"f{fetch.index(f)}"].alias(o) for f, o in pairs])
        return out, names

    # ------------------------------------------------------------------ latest, read, sql

    def latest(
        self, snapshot: TableSnapshot, key_names: Sequence[str], *, start: datetime | None, end: datetime
    ) -> pa.RecordBatchReader:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        schema = snapshot.schema
        for name in (*key_names, EVENT_TS, CREATED_TS):
            if name not in schema.names:
                raise SchemaError(f"table {snapshot.name!r} has no column {name!r}; it has {schema.names}")
        if not snapshot.files:
            return pa.RecordBatchReader.from_batches(schema, iter(()))
        with _mapped_errors():
            history = self._history(snapshot)
            event = _c(EVENT_TS)
            wanted = event < F.timestamp_micros(F.lit(_micros(end)))
            if start is not None:
                wanted &= event >= F.timestamp_micros(F.lit(_micros(start)))
            newest = Window.partitionBy(*[_c(k) for k in key_names]).orderBy(event.desc(), _c(CREATED_TS).desc())
            winners = (
                history.where(wanted).withColumn(_RN, F.row_number().over(newest)).where(F.col(_RN) == 1).drop(_RN)
            )
            table = winners.toArrow()
        batches = [conform(b, schema) for b in table.to_batches(max_chunksize=_BATCH_ROWS)]
        return pa.RecordBatchReader.from_batches(schema, iter(batches))

    def read(self, snapshot: TableSnapshot) -> pa.Table:
        if not snapshot.files:
            return snapshot.schema.empty_table()
        with _mapped_errors():
            table = self._history(snapshot).toArrow()
        return pa.Table.from_batches([conform(b, snapshot.schema) for b in table.to_batches()], snapshot.schema)

    def read_frame(self, snapshot: TableSnapshot) -> DataFrame:
        """The snapshot as a Spark DataFrame (its version, its files), for jobs of the caller's own."""
        with _mapped_errors():
            return self._history(snapshot)

    def sql(self, query: str, tables: Sequence[TableSnapshot]) -> pa.Table:
        raise UserError(
            "offline engine spark does not run `strato sql`: Spark SQL has no sandbox for user queries; "
            "use engine duckdb for SQL over the same tables, or `read_frame` for Spark jobs of your own"
        )

    def batch_query(
        self, batch: BatchQuery, *, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> pa.Table:
        """A SqlSource's query, parsed and analyzed by Spark and refused unless it is one query
        over its inputs alone (`spark_batch` says how), then run on a child session."""
        from strato.offline.engines.spark_batch import run_batch_query

        for view in batch.views:  # inputs on an object store: Hadoop gets their settings first
            self._reach(view.snapshot)
        return run_batch_query(self.spark, batch, start=start, end=end, limit=limit)

    # ------------------------------------------------------------------ helpers

    def _history(self, snapshot: TableSnapshot) -> DataFrame:
        """The snapshot's rows: its version, and only its listed files (see `SparkOptions.read`)."""
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        self._reach(snapshot)
        if self._options.read == "files":
            try:
                schema = from_arrow_schema(snapshot.schema)
            except (TypeError, ValueError) as exc:
                raise SchemaError(f"table {snapshot.name!r}: Spark cannot read its schema: {_one_line(exc)}") from exc
            # Columns a file lacks (added later, design rule 6) read as null under the given schema.
            return self.spark.read.schema(schema).parquet(*snapshot.files)
        frame = self.spark.read.format("delta").option("versionAsOf", int(snapshot.version)).load(snapshot.path)
        # Keep only the listed files (all of the version's, unless a caller narrowed them). Delta
        # names each data file uniquely, so its base name identifies it; asking Delta for the
        # version's file list instead (`inputFiles`) costs a log replay job of its own.
        names = sorted({_local(f).rsplit("/", 1)[-1] for f in snapshot.files})
        return frame.where(F.col("_metadata.file_name").isin(names))


def _unjoinable(request: PitRequest) -> bool:
    return request.snapshot is None or not request.snapshot.files


def _append_nulls(spine: pa.Table, requests: Sequence[PitRequest]) -> pa.Table:
    out = spine
    for request in requests:
        for name, out_type in zip(request.output_names, request.output_types, strict=True):
            out = out.append_column(name, pa.nulls(spine.num_rows, out_type))
    return out


def _c(name: str) -> Column:
    """A column by its exact name (dots and backticks are not syntax here)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _local(uri: str) -> str:
    """A file URI or path, compared as a path: ``file:///a/b``, ``file:/a/b`` and ``/a/b`` agree."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


def _micros(value: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Spark and py4j errors → Strato's: a lost JVM is transient, the rest terminal."""
    from py4j.protocol import Py4JError, Py4JNetworkError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    try:
        yield
    except Py4JNetworkError as exc:
        raise BackendUnavailable(f"spark: lost the connection to the JVM: {_one_line(exc)}") from exc
    except (PySparkException, Py4JError) as exc:
        raise BackendFailure(f"spark: {_one_line(exc)}") from exc
