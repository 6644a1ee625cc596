"""Batch transformations on Spark: a SqlSource's query, checked by Spark's own parser and analyzer.

Spark SQL has no sandbox of its own: it reads any path it is named (``csv.`/etc/passwd```),
runs commands (``SET``, ``ADD JAR``, ``INSERT OVERWRITE DIRECTORY``, ``CREATE``...) eagerly
as `spark.sql` returns, and calls Java methods (``reflect``). So the query runs only after
two checks, and on a session of its own:

* a **child session** (`SparkSession.newSession`: same JVM and cluster, its own temporary
  views and settings), where the only temporary views are the inputs and ``${...}`` variable
  substitution is off (it would show any Spark setting, credentials included, to the query);
* the text is **parsed** by the session's parser (one statement, or a SQL error), and refused
  if any node of the parsed plan is a command or a statement (INSERT, CREATE, SET...) or names
  a relation by a qualified name (``csv.`path```, ``db.table``): nothing has been read yet;
* the plan is then **analyzed** without running any command, and refused if a leaf is
  anything but one of the inputs' temporary views, a CTE reference, literal rows or a
  ``range``, or if an expression calls Java (``reflect``, ``java_method``) or a UDF.

Only then is the text run, by the same parser on the same untouched session, so what runs is
what was checked. Around it, as on DuckDB (`duckdb_batch`): each input view shows one row per
(join keys, event time), its latest write (design rule 2); each input file is read as Parquet,
CSV (header, inferred types) or Delta (latest version); the result is filtered on its event
column to ``[start, end)`` and cut to `limit` rows (``limit=0``: the schema only, unfiltered);
``$start`` and ``$end`` become the bounds as timestamp literals (Spark has no ``$name``
parameters: the text is scanned, outside strings and comments, for them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from strato.errors import BackendUnavailable, UserError
from strato.offline.base import BatchQuery, FileInput, TableSnapshot

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_RN = "__strato_rn"
#: Leaves of an analyzed plan that read nothing outside the query (the inputs are checked apart).
_SAFE_LEAVES = frozenset({"OneRowRelation", "LocalRelation", "Range", "CTERelationRef"})
#: Expression classes that run code of the JVM's or of a user's rather than SQL's.
_REFUSED_EXPRESSIONS = re.compile(r"Reflect|UDF|UDAF|UserDefined|ScalaAggregator")
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def run_batch_query(
    spark: SparkSession, batch: BatchQuery, *, start: datetime | None, end: datetime | None, limit: int | None
) -> pa.Table:
    """`batch.query`'s rows with ``start <= event < end``, at most `limit` of them."""
    from py4j.protocol import Py4JError, Py4JNetworkError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    text = bind_parameters(batch.query, start, end)
    try:
        child = spark.newSession()
        child.conf.set("spark.sql.variable.substitute", "false")
        inputs = _register(child, batch)
        check_query(child, text, inputs)
        frame = _result(child, text, batch.event_column, start=start, end=end, limit=limit)
        table = frame.toArrow()
    except Py4JNetworkError as exc:
        raise BackendUnavailable(f"spark: lost the connection to the JVM: {_line(exc)}") from exc
    except (PySparkException, Py4JError) as exc:
        raise UserError(f"SqlSource query: SQL error: {_line(exc)}") from exc
    # Every column nullable, as DuckDB's results are: Spark's NOT NULL (count(*), keys of a
    # join) says nothing the store's schema checks need, and would make the engines differ.
    return table.cast(pa.schema([field.with_nullable(True) for field in table.schema]))


def bind_parameters(query: str, start: datetime | None, end: datetime | None) -> str:
    """The query with ``$start``/``$end`` (outside strings, identifiers and comments) as timestamps."""
    values = {"start": start, "end": end}
    out = []
    for piece, is_code in _split(query):
        if not is_code:
            out.append(piece)
            continue
        for name in _PARAMETER.findall(piece):
            if name not in values:
                raise UserError(
                    f"SqlSource query uses parameter ${name}; the parameters it may use are $start and $end"
                )
            if values[name] is None:
                raise UserError(f"SqlSource query uses ${name}, which needs a bounded range to run")

        def literal(match: re.Match[str]) -> str:
            moment = values[match.group(1)]
            assert moment is not None
            return f"timestamp_micros({_micros(moment)})"

        out.append(_PARAMETER.sub(literal, piece))
    return "".join(out)


def check_query(spark: SparkSession, text: str, inputs: frozenset[str]) -> None:
    """Refuse, before it runs, a text that is not one query over `inputs` alone (module docstring)."""
    jss = spark._jsparkSession
    parsed = jss.sessionState().sqlParser().parsePlan(text)
    for node in _nodes(parsed):
        kind = node.nodeName()
        if (
            kind.startswith("Insert")
            or _is(spark, node, "org.apache.spark.sql.catalyst.plans.logical.Command")
            or _is(spark, node, "org.apache.spark.sql.catalyst.plans.logical.ParsedStatement")
        ):
            raise UserError(f"a SqlSource query is one SELECT; got {kind}")
        if kind == "PlanWithUnresolvedIdentifier":  # IDENTIFIER('csv.`/etc`'): a name only analysis knows
            raise UserError(_out_of_reach("a relation named by IDENTIFIER(...)", inputs))
        if kind == "UnresolvedRelation":
            parts = [str(p) for p in _seq(node.multipartIdentifier())]
            if len(parts) != 1:
                raise UserError(_out_of_reach(".".join(parts), inputs))
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    skip = getattr(jvm.org.apache.spark.sql.execution, "CommandExecutionMode$").__getattr__("MODULE$").SKIP()
    analyzed = jss.sessionState().executePlan(parsed, skip).analyzed()
    for node in _nodes(analyzed, inputs=inputs):
        kind = node.nodeName()
        if _is(spark, node, "org.apache.spark.sql.catalyst.plans.logical.Command"):
            raise UserError(f"a SqlSource query is one SELECT; got {kind}")
        if kind == "View":
            if not _is_input(node, inputs):
                raise UserError(_out_of_reach(node.desc().identifier().unquotedString(), inputs))
        elif node.children().isEmpty() and kind not in _SAFE_LEAVES:
            raise UserError(_out_of_reach(_describe(node), inputs))
        for expression in _expressions(node):
            name = expression.getClass().getSimpleName()
            if _REFUSED_EXPRESSIONS.search(name):
                raise UserError(f"a SqlSource query runs SQL only; it may not call {expression.prettyName()} ({name})")


def _register(spark: SparkSession, batch: BatchQuery) -> frozenset[str]:
    """Each input as a temporary view of `spark` under its declared name; the names."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    for view in batch.views:
        history = _history(spark, view.snapshot)
        identity = Window.partitionBy(*[_c(k) for k in (*view.key_names, "event_timestamp")]).orderBy(
            _c("created_timestamp").desc()
        )
        latest = history.withColumn(_RN, F.row_number().over(identity)).where(F.col(_RN) == 1).drop(_RN)
        latest.createOrReplaceTempView(view.snapshot.name)
    for source in batch.files:
        _open(spark, source).createOrReplaceTempView(source.name)
    return frozenset([*(v.snapshot.name for v in batch.views), *(f.name for f in batch.files)])


def _result(
    spark: SparkSession,
    text: str,
    event_column: str,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
) -> DataFrame:
    from pyspark.sql import functions as F

    frame = spark.sql(text)
    if limit == 0:
        return frame.limit(0)
    event = _c(event_column)
    if start is not None:
        frame = frame.where(event >= F.timestamp_micros(F.lit(_micros(start))))
    if end is not None:
        frame = frame.where(event < F.timestamp_micros(F.lit(_micros(end))))
    return frame if limit is None else frame.limit(int(limit))


def _history(spark: SparkSession, snapshot: TableSnapshot) -> DataFrame:
    """The snapshot's listed files, read with its schema (columns a file lacks read as null)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(snapshot.schema)
    if not snapshot.files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*snapshot.files)


def _open(spark: SparkSession, source: FileInput) -> DataFrame:
    where = f"SqlSource input {source.name!r} ({source.path})"
    if source.format not in ("parquet", "csv", "delta"):
        raise UserError(f"{where}: unsupported format {source.format!r}; use parquet, csv or delta")
    if "://" not in source.path and not os.path.exists(source.path.removeprefix("file:")):
        raise UserError(f"{where}: no such file or folder")
    from pyspark.errors import PySparkException

    try:
        if source.format == "parquet":
            return spark.read.parquet(source.path)
        if source.format == "csv":
            return spark.read.option("header", "true").option("inferSchema", "true").csv(source.path)
        return spark.read.format("delta").load(source.path)
    except PySparkException as exc:
        raise UserError(f"{where}: cannot read as {source.format} ({_line(exc)})") from None


# ---------------------------------------------------------------------- plan walking (py4j)


def _nodes(plan: Any, *, inputs: frozenset[str] | None = None) -> Iterator[Any]:
    """Every node of `plan`: children, CTE definitions and subqueries in expressions.

    With `inputs`, an input's view is yielded but not entered (its own plan reads its files).
    """
    stack = [plan]
    while stack:
        node = stack.pop()
        yield node
        if inputs is not None and node.nodeName() == "View" and _is_input(node, inputs):
            continue
        for seq in (node.children(), node.innerChildren(), node.subqueries()):
            stack.extend(_seq(seq))


def _expressions(node: Any) -> Iterator[Any]:
    stack = _seq(node.expressions())
    while stack:
        expression = stack.pop()
        yield expression
        stack.extend(_seq(expression.children()))


def _seq(seq: Any) -> list[Any]:
    """A Scala Seq's items (py4j hands it over as an opaque object)."""
    return [seq.apply(i) for i in range(seq.size())]


def _is_input(view: Any, inputs: frozenset[str]) -> bool:
    identifier = view.desc().identifier()
    return bool(view.isTempView()) and identifier.database().isEmpty() and identifier.table() in inputs


def _is(spark: SparkSession, node: Any, class_name: str) -> bool:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return bool(jvm.java.lang.Class.forName(class_name).isInstance(node))


def _describe(node: Any) -> str:
    text = " ".join(str(node.simpleString(200)).split())
    return text[:200]


def _out_of_reach(what: str, inputs: frozenset[str]) -> str:
    names = ", ".join(sorted(inputs)) or "none"
    return f"a SqlSource query reads only its inputs ({names}); files and tables are out of reach: it reads {what}"


def _split(query: str) -> Iterator[tuple[str, bool]]:
    """`query` in pieces, each either code (True) or a string, quoted identifier or comment."""
    i, n, code = 0, len(query), 0
    while i < n:
        ch = query[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and query[j] != ch:
                j += 2 if query[j] == "\\" and ch != "`" else 1
            end = min(j + 1, n)
        elif query.startswith("--", i):
            nl = query.find("\n", i)
            end = n if nl < 0 else nl
        elif query.startswith("/*", i):
            close = query.find("*/", i + 2)
            end = n if close < 0 else close + 2
        else:
            i += 1
            continue
        if code < i:
            yield query[code:i], True
        yield query[i:end], False
        i = code = end
    if code < n:
        yield query[code:], True


def _c(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _micros(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return " ".join(lines[0].split())[:500]
