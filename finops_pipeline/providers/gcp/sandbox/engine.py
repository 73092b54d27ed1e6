"""Running GoogleSQL for real: sqlglot transpiles it to DuckDB, over tables seeded in DuckDB.

What of BigQuery it reproduces, and how:

* **Tables** with BigQuery schemas (STRING, INT64, FLOAT64, NUMERIC, BOOL, DATE, TIMESTAMP,
  RECORD and REPEATED RECORD), stored as DuckDB STRUCT and LIST-of-STRUCT columns. TIMESTAMPs are
  stored as UTC wall-clock values, so ``DATE(ts)`` is the UTC day, as in BigQuery.
* **Partitioning**: ingestion-time (``timePartitioning`` without a field) tables get the
  ``_PARTITIONTIME`` pseudo-column as a real column, set per row at load time; tables without it
  answer "Unrecognized name: _PARTITIONTIME", as BigQuery does. Column-partitioned and
  unpartitioned tables are supported too.
* **Queries**: parsed as GoogleSQL and executed by DuckDB, so ``UNNEST`` (correlated, and in
  comma-joins, which repeat the row per element as in BigQuery), ``DATE()``, ``IN UNNEST(@array)``,
  ``IFNULL``, ``CAST(... AS NUMERIC)`` (DECIMAL(38, 9): NUMERIC's precision and scale), CTEs,
  aggregates and named ``@parameters`` (bound, never spliced) behave as in BigQuery. BIGNUMERIC,
  positional parameters, DML and scripts are refused.
* **Bytes**: ``totalBytesProcessed`` is the size of the referenced columns (leaf fields for
  ``record.field``, the whole column otherwise) in the scanned partitions, with BigQuery's data
  type sizes (STRING 2 + UTF-8 bytes, INT64/FLOAT64/DATE/TIMESTAMP 8, NUMERIC 16, BOOL 1,
  NULL 0, arrays and records the sum of their parts). Partitions are pruned by the WHERE
  conjuncts that reference only the partitioning column (``_PARTITIONTIME`` or the field).
  ``totalBytesBilled`` rounds each table up to a whole MiB with a 10 MiB minimum, and
  ``maximumBytesBilled`` fails the query before it runs with ``bytesBilledLimitExceeded``.

Not covered: clustering, caching, ``_PARTITIONDATE``, time zones other than UTC in
``DATE(ts, tz)``, table wildcards, and BigQuery's exact error texts beyond the few it mimics.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp

MIB = 1024 * 1024
#: BigQuery bills at least 10 MiB per table a query references.
MINIMUM_BILLED_PER_TABLE = 10 * MIB
PARTITIONTIME = "_PARTITIONTIME"
_PARTITION_ID = "__partition_id"
_UNPARTITIONED = "__UNPARTITIONED__"

_SCALAR_DUCK_TYPES = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
}
_FIXED_SIZES = {
    "INTEGER": 8,
    "INT64": 8,
    "FLOAT": 8,
    "FLOAT64": 8,
    "NUMERIC": 16,
    "BOOLEAN": 1,
    "BOOL": 1,
    "DATE": 8,
    "TIMESTAMP": 8,
}


class BigQueryApiError(Exception):
    """An error BigQuery would return: HTTP ``status``, ``reason`` and ``message``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class TableRef:
    """project.dataset.table."""

    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}:{self.dataset}.{self.table}"


@dataclass
class _Table:
    ref: TableRef
    schema: list[dict[str, Any]]
    location: str
    time_partitioning: dict[str, Any] | None
    duck_name: str
    leaves: dict[str, str] = field(default_factory=dict)  # path -> size SQL expression
    partition_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    num_rows: int = 0

    @property
    def ingestion_time(self) -> bool:
        return self.time_partitioning is not None and not self.time_partitioning.get("field")

    @property
    def partition_column(self) -> str | None:
        if self.time_partitioning is None:
            return None
        return self.time_partitioning.get("field") or PARTITIONTIME

    def resource(self) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "kind": "bigquery#table",
            "id": f"{self.ref.project}:{self.ref.dataset}.{self.ref.table}",
            "tableReference": {
                "projectId": self.ref.project,
                "datasetId": self.ref.dataset,
                "tableId": self.ref.table,
            },
            "schema": {"fields": self.schema},
            "numRows": str(self.num_rows),
            "numBytes": str(sum(sum(b.values()) for b in self.partition_bytes.values())),
            "location": self.location,
            "type": "TABLE",
        }
        if self.time_partitioning is not None:
            resource["timePartitioning"] = dict(self.time_partitioning)
        return resource


@dataclass(frozen=True)
class QueryResult:
    """Rows and BigQuery's accounting of one query."""

    schema: list[dict[str, Any]]
    rows: list[tuple[Any, ...]]
    bytes_processed: int
    bytes_billed: int
    tables: tuple[TableRef, ...]


def _duck_type(field_schema: Mapping[str, Any]) -> str:
    kind = field_schema["type"].upper()
    if kind in {"RECORD", "STRUCT"}:
        inner = ", ".join(
            f'"{sub["name"]}" {_duck_type(sub)}' for sub in field_schema.get("fields", [])
        )
        duck = f"STRUCT({inner})"
    elif kind in _SCALAR_DUCK_TYPES:
        duck = _SCALAR_DUCK_TYPES[kind]
    else:
        raise ValueError(f"the sandbox does not store {kind} columns")
    return f"{duck}[]" if field_schema.get("mode") == "REPEATED" else duck


def _size_sql(kind: str, value: str) -> str:
    kind = kind.upper()
    if kind == "STRING":
        return f"CASE WHEN {value} IS NULL THEN 0 ELSE 2 + strlen({value}) END"
    return f"CASE WHEN {value} IS NULL THEN 0 ELSE {_FIXED_SIZES[kind]} END"


def _leaf_sizes(fields: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per leaf path, a SQL expression for its size in one row."""
    leaves: dict[str, str] = {}
    for top in fields:
        name = top["name"]
        column = f'"{name}"'
        repeated = top.get("mode") == "REPEATED"
        if top["type"].upper() in {"RECORD", "STRUCT"}:
            for path, expression in _record_leaves(
                top.get("fields", []), "element" if repeated else column
            ):
                if repeated:
                    expression = (
                        f"COALESCE(list_sum(list_transform({column}, lambda element: "
                        f"{expression})), 0)"
                    )
                leaves[f"{name}.{path}"] = expression
        elif repeated:
            leaves[name] = (
                f"COALESCE(list_sum(list_transform({column}, lambda element: "
                f"{_size_sql(top['type'], 'element')})), 0)"
            )
        else:
            leaves[name] = _size_sql(top["type"], column)
    return leaves


def _record_leaves(fields: Sequence[Mapping[str, Any]], prefix: str) -> Iterable[tuple[str, str]]:
    for sub in fields:
        access = f'{prefix}."{sub["name"]}"'
        if sub.get("mode") == "REPEATED":
            raise ValueError("the sandbox does not size repeated fields inside records")
        if sub["type"].upper() in {"RECORD", "STRUCT"}:
            for path, expression in _record_leaves(sub.get("fields", []), access):
                yield f"{sub['name']}.{path}", expression
        else:
            yield sub["name"], _size_sql(sub["type"], access)


_TIMESTAMP_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?"
)


def parse_timestamp(text: str) -> dt.datetime:
    """A BigQuery TIMESTAMP literal as a naive UTC datetime."""
    if not _TIMESTAMP_TEXT.fullmatch(text.strip()):
        raise BigQueryApiError(400, "invalidQuery", f"Invalid TIMESTAMP value: {text}")
    text = text.strip().replace(" ", "T").replace("Z", "+00:00")
    # Python keeps microseconds only.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _scalar_parameter(kind: str, value: Any) -> Any:
    if value is None:
        return None
    kind = kind.upper()
    try:
        if kind == "STRING":
            return str(value)
        if kind in {"INT64", "INTEGER"}:
            return int(value)
        if kind in {"FLOAT64", "FLOAT"}:
            return float(value)
        if kind in {"NUMERIC", "BIGNUMERIC"}:
            return Decimal(str(value))
        if kind in {"BOOL", "BOOLEAN"}:
            return str(value).lower() == "true"
        if kind == "DATE":
            return dt.date.fromisoformat(str(value))
        if kind == "TIMESTAMP":
            return parse_timestamp(str(value))
    except (ValueError, ArithmeticError):
        raise BigQueryApiError(
            400, "invalidQuery", f"Invalid value for query parameter of type {kind}"
        ) from None
    raise BigQueryApiError(400, "invalidQuery", f"The sandbox does not bind {kind} parameters")


def decode_parameters(query_parameters: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """REST ``queryParameters`` (named mode) as Python values."""
    values: dict[str, Any] = {}
    for parameter in query_parameters:
        name = parameter.get("name")
        if not name:
            raise BigQueryApiError(
                400, "invalidQuery", "The sandbox supports named query parameters only"
            )
        parameter_type = parameter.get("parameterType") or {}
        parameter_value = parameter.get("parameterValue") or {}
        if parameter_type.get("type") == "ARRAY":
            element_type = (parameter_type.get("arrayType") or {}).get("type", "STRING")
            values[name.lower()] = [
                _scalar_parameter(element_type, item.get("value"))
                for item in parameter_value.get("arrayValues") or []
            ]
        else:
            values[name.lower()] = _scalar_parameter(
                parameter_type.get("type", "STRING"), parameter_value.get("value")
            )
    return values


def _bigquery_type(duck_type: str) -> str:
    text = str(duck_type).upper()
    if text.startswith("DECIMAL"):
        return "NUMERIC"
    if text in {"VARCHAR"}:
        return "STRING"
    if text in {"BIGINT", "INTEGER", "HUGEINT", "SMALLINT", "TINYINT", "UBIGINT"}:
        return "INTEGER"
    if text in {"DOUBLE", "FLOAT"}:
        return "FLOAT"
    if text in {"BOOLEAN", "DATE", "TIMESTAMP"}:
        return text
    raise BigQueryApiError(
        400, "invalidQuery", f"The sandbox cannot return columns of type {duck_type}"
    )


def _unrecognized(message: str) -> str:
    match = re.search(r'column "?([^"\s]+)"? not found', message, re.IGNORECASE)
    if match:
        return f"Unrecognized name: {match.group(1)}"
    first = message.strip().splitlines()[0] if message.strip() else "invalid query"
    return f"Invalid query: {first}"


class BigQueryEngine:
    """Tables in an in-memory DuckDB and a GoogleSQL front end over them (thread-safe)."""

    def __init__(self) -> None:
        self._connection = duckdb.connect(":memory:")
        self._connection.execute("SET TimeZone = 'UTC'")
        self._lock = threading.RLock()
        self._tables: dict[TableRef, _Table] = {}

    # --- tables --------------------------------------------------------------------------

    def create_table(
        self,
        ref: TableRef,
        schema: Sequence[Mapping[str, Any]],
        *,
        location: str = "US",
        time_partitioning: Mapping[str, Any] | None = None,
    ) -> None:
        """Create (or replace) a table. ``time_partitioning`` is the REST ``timePartitioning``."""
        with self._lock:
            duck_name = f"t{len(self._tables)}_{re.sub(r'[^A-Za-z0-9_]', '_', ref.table)}"
            if ref in self._tables:
                duck_name = self._tables[ref].duck_name
            table = _Table(
                ref=ref,
                schema=[dict(column) for column in schema],
                location=location,
                time_partitioning=dict(time_partitioning) if time_partitioning else None,
                duck_name=duck_name,
                leaves=_leaf_sizes(schema),
            )
            columns = [f'"{column["name"]}" {_duck_type(column)}' for column in schema]
            if table.ingestion_time:
                columns.append(f"{PARTITIONTIME} TIMESTAMP")
            columns.append(f"{_PARTITION_ID} VARCHAR")
            self._connection.execute(f"DROP TABLE IF EXISTS {duck_name}")
            self._connection.execute(f"CREATE TABLE {duck_name} ({', '.join(columns)})")
            self._tables[ref] = table

    def table(self, ref: TableRef) -> _Table:
        """A table, or BigQuery's 404."""
        try:
            return self._tables[ref]
        except KeyError:
            raise BigQueryApiError(404, "notFound", f"Not found: Table {ref}") from None

    def table_resource(self, ref: TableRef) -> dict[str, Any]:
        """The ``tables.get`` resource."""
        with self._lock:
            return self.table(ref).resource()

    def insert_rows(self, ref: TableRef, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append rows given as nested dicts (datetimes naive UTC or aware).

        For ingestion-time tables each row carries ``_PARTITIONTIME`` (its load time; truncated
        to the partition's granularity here), as a streaming or load job would set it.
        """
        with self._lock:
            table = self.table(ref)
            loader = _ColumnarLoader(table.schema)
            partition_times: list[Any] = []
            for row in rows:
                loader.add(row)
                if table.ingestion_time:
                    loaded = row.get(PARTITIONTIME)
                    if loaded is None:
                        raise ValueError("rows of an ingestion-time table need _PARTITIONTIME")
                    partition_times.append(loaded)
            if not loader.count:
                return 0
            base, children = loader.frames()
            select = list(loader.select_expressions())
            if table.ingestion_time:
                granularity = table.time_partitioning.get("type", "DAY").lower()
                base[PARTITIONTIME] = _timestamps(partition_times)
                select.append(
                    f"date_trunc('{granularity}', base.{PARTITIONTIME}) AS {PARTITIONTIME}"
                )
            registered = ["base"]
            self._connection.register("base", base)
            try:
                joins = []
                for name, frame in children.items():
                    view = f"child_{len(registered)}"
                    self._connection.register(view, frame)
                    registered.append(view)
                    joins.append(
                        f"LEFT JOIN (SELECT __row, list({loader.element_expression(name)} "
                        f"ORDER BY __ordinal) AS items FROM {view} GROUP BY __row) AS "
                        f'"{name}__list" ON "{name}__list".__row = base.__row'
                    )
                self._connection.execute(
                    f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {', '.join(select)} "
                    f"FROM base {' '.join(joins)} ORDER BY base.__row"
                )
                self._connection.execute(
                    f"INSERT INTO {table.duck_name} SELECT *, "
                    f"{self._partition_expression(table)} FROM incoming"
                )
                self._connection.execute("DROP TABLE incoming")
            finally:
                for view in registered:
                    self._connection.unregister(view)
            table.num_rows += loader.count
            self._refresh_bytes(table)
            return loader.count

    def _partition_expression(self, table: _Table) -> str:
        partitioning = table.time_partitioning
        if partitioning is None:
            return f"'{_UNPARTITIONED}'"
        granularity = {"HOUR": "hour", "DAY": "day", "MONTH": "month", "YEAR": "year"}[
            partitioning.get("type", "DAY").upper()
        ]
        column = PARTITIONTIME if table.ingestion_time else f'"{partitioning["field"]}"'
        return f"CAST(date_trunc('{granularity}', incoming.{column}) AS VARCHAR)"

    def _refresh_bytes(self, table: _Table) -> None:
        paths = list(table.leaves)
        sums = ", ".join(f"SUM({table.leaves[path]})" for path in paths)
        result = self._connection.execute(
            f"SELECT {_PARTITION_ID}, {sums} FROM {table.duck_name} GROUP BY {_PARTITION_ID}"
        ).fetchall()
        table.partition_bytes = {
            row[0]: {path: int(value or 0) for path, value in zip(paths, row[1:], strict=True)}
            for row in result
        }

    # --- queries -------------------------------------------------------------------------

    def referenced_tables(self, sql: str, default_project: str) -> tuple[TableRef, ...]:
        """The tables a query reads (to check permissions before running it)."""
        tree = self._parse(sql)
        return tuple(dict.fromkeys(ref for ref, _ in self._table_nodes(tree, default_project)))

    def run_query(
        self,
        sql: str,
        parameters: Mapping[str, Any],
        *,
        default_project: str,
        location: str | None = None,
        dry_run: bool = False,
        maximum_bytes_billed: int | None = None,
    ) -> QueryResult:
        """Execute GoogleSQL ``sql`` with named ``parameters`` (already decoded)."""
        tree = self._parse(sql)
        with self._lock:
            nodes = self._table_nodes(tree, default_project)
            tables = {}
            for ref, _node in nodes:
                table = self.table(ref)
                if location and table.location.upper() != location.upper():
                    raise BigQueryApiError(
                        404,
                        "notFound",
                        f"Not found: Dataset {ref.project}:{ref.dataset} was not found in "
                        f"location {location}",
                    )
                tables[ref] = table
            used = self._used_parameters(tree, parameters)
            duck_tree = tree.copy().transform(lambda node: self._to_duck(node, default_project))
            duck_sql = duck_tree.sql(dialect="duckdb")
            processed_by_table = {
                ref: self._bytes_processed(tree, table, ref, used, default_project)
                for ref, table in tables.items()
            }
            bytes_processed = sum(processed_by_table.values())
            bytes_billed = sum(
                0
                if processed == 0
                else max(MINIMUM_BILLED_PER_TABLE, math.ceil(processed / MIB) * MIB)
                for processed in processed_by_table.values()
            )
            if (
                not dry_run
                and maximum_bytes_billed is not None
                and bytes_billed > maximum_bytes_billed
            ):
                raise BigQueryApiError(
                    400,
                    "bytesBilledLimitExceeded",
                    f"Query exceeded limit for bytes billed: {maximum_bytes_billed}. "
                    f"{bytes_billed} or higher required.",
                )
            try:
                cursor = self._connection.execute(duck_sql, used)
                rows = cursor.fetchall()
                description = cursor.description or []
            except duckdb.Error as exc:
                raise BigQueryApiError(400, "invalidQuery", _unrecognized(str(exc))) from None
            schema = [
                {"name": column[0], "type": _bigquery_type(column[1]), "mode": "NULLABLE"}
                for column in description
            ]
            if dry_run:
                rows, bytes_billed = [], 0
            return QueryResult(schema, rows, bytes_processed, bytes_billed, tuple(tables))

    def _parse(self, sql: str) -> exp.Expression:
        try:
            statements = sqlglot.parse(sql, read="bigquery")
        except sqlglot.errors.SqlglotError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "syntax error"
            raise BigQueryApiError(400, "invalidQuery", f"Syntax error: {first}") from None
        statements = [statement for statement in statements if statement is not None]
        if len(statements) != 1:
            raise BigQueryApiError(400, "invalidQuery", "The sandbox runs one statement per query")
        tree = statements[0]
        if not isinstance(tree, exp.Query):
            raise BigQueryApiError(400, "invalidQuery", "The sandbox answers SELECT queries only")
        for data_type in tree.find_all(exp.DataType):
            if data_type.this == exp.DataType.Type.BIGDECIMAL:
                raise BigQueryApiError(
                    400, "invalidQuery", "The sandbox does not support BIGNUMERIC"
                )
        if list(tree.find_all(exp.Placeholder)):
            raise BigQueryApiError(
                400, "invalidQuery", "The sandbox supports named query parameters only"
            )
        return tree

    def _table_nodes(
        self, tree: exp.Expression, default_project: str
    ) -> list[tuple[TableRef, exp.Table]]:
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        nodes = []
        for node in tree.find_all(exp.Table):
            if not node.name or (not node.db and node.name.lower() in ctes):
                continue
            if isinstance(node.this, exp.Unnest) or node.find_ancestor(exp.Unnest):
                continue
            if not node.db:
                raise BigQueryApiError(
                    400, "invalidQuery", f'Table "{node.name}" must be qualified with a dataset'
                )
            nodes.append((TableRef(node.catalog or default_project, node.db, node.name), node))
        return nodes

    def _used_parameters(
        self, tree: exp.Expression, parameters: Mapping[str, Any]
    ) -> dict[str, Any]:
        used: dict[str, Any] = {}
        for node in tree.find_all(exp.Parameter):
            name = node.name.lower()
            if name not in parameters:
                raise BigQueryApiError(
                    400, "invalidQuery", f"Query parameter '{node.name}' not found"
                )
            used[name] = parameters[name]
        return used

    def _to_duck(self, node: exp.Expression, default_project: str) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DECIMAL:
            # GoogleSQL NUMERIC is DECIMAL(38, 9); DuckDB's bare DECIMAL is (18, 3).
            return exp.DataType.build("DECIMAL(38, 9)", dialect="duckdb")
        if isinstance(node, exp.Parameter):
            return exp.Parameter(this=exp.to_identifier(node.name.lower()))
        if isinstance(node, exp.Table) and node.db:
            ref = TableRef(node.catalog or default_project, node.db, node.name)
            table = self._tables[ref]
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
            return exp.Table(this=exp.to_identifier(table.duck_name), alias=alias)
        return node

    # --- bytes ---------------------------------------------------------------------------

    def _bytes_processed(
        self,
        tree: exp.Expression,
        table: _Table,
        ref: TableRef,
        parameters: Mapping[str, Any],
        default_project: str,
    ) -> int:
        partitions = self._scanned_partitions(tree, table, ref, parameters, default_project)
        leaves = self._referenced_leaves(tree, table, ref, default_project)
        return sum(
            table.partition_bytes[partition].get(leaf, 0)
            for partition in partitions
            for leaf in leaves
        )

    def _referenced_leaves(
        self, tree: exp.Expression, table: _Table, ref: TableRef, default_project: str
    ) -> set[str]:
        top_level = {column["name"].lower(): column["name"] for column in table.schema}
        aliases = {ref.table.lower()}
        readers: set[int] = set()
        for table_ref, node in self._table_nodes(tree, default_project):
            if table_ref == ref:
                if node.alias:
                    aliases.add(node.alias.lower())
                reader = node.find_ancestor(exp.Select)
                if reader is not None:
                    readers.add(id(reader))

        def reads_table(node: exp.Expression) -> bool:
            # A column belongs to the table if a SELECT around it reads the table directly; a
            # CTE's output column of the same name, read by an outer SELECT, does not.
            select = node if isinstance(node, exp.Select) else node.find_ancestor(exp.Select)
            while select is not None:
                if id(select) in readers:
                    return True
                select = select.find_ancestor(exp.Select)
            return False

        leaves: set[str] = set()
        for select in tree.find_all(exp.Select):
            if id(select) in readers and any(
                isinstance(expression, exp.Star) for expression in select.expressions
            ):
                leaves.update(table.leaves)
        for column in tree.find_all(exp.Column):
            if not reads_table(column):
                continue
            names = [part.name for part in column.parts]
            if isinstance(column.this, exp.Star):
                if names and names[0].lower() in aliases:
                    leaves.update(table.leaves)
                continue
            if len(names) > 1 and names[0].lower() in aliases:
                names = names[1:]
            if not names or names[0].lower() not in top_level:
                continue
            prefix = ".".join([top_level[names[0].lower()], *names[1:]]).lower()
            leaves.update(
                path
                for path in table.leaves
                if path.lower() == prefix or path.lower().startswith(prefix + ".")
            )
        return leaves

    def _scanned_partitions(
        self,
        tree: exp.Expression,
        table: _Table,
        ref: TableRef,
        parameters: Mapping[str, Any],
        default_project: str,
    ) -> set[str]:
        every = set(table.partition_bytes)
        column = table.partition_column
        if column is None:
            return every
        scanned: set[str] = set()
        for table_ref, node in self._table_nodes(tree, default_project):
            if table_ref != ref:
                continue
            select = node.find_ancestor(exp.Select)
            where = select.args.get("where") if select is not None else None
            conjuncts = (
                list(where.this.flatten())
                if where is not None and isinstance(where.this, exp.And)
                else ([where.this] if where is not None else [])
            )
            pruning = [conjunct for conjunct in conjuncts if _only_references(conjunct, column)]
            if not pruning:
                return every
            condition = exp.and_(*[conjunct.copy() for conjunct in pruning])
            duck_condition = condition.transform(lambda n: self._to_duck(n, default_project)).sql(
                dialect="duckdb"
            )
            used = {
                name: value
                for name, value in parameters.items()
                if re.search(rf"\${re.escape(name)}\b", duck_condition)
            }
            try:
                result = self._connection.execute(
                    f"SELECT DISTINCT {_PARTITION_ID} FROM {table.duck_name} AS partitions_scan "
                    f"WHERE {duck_condition}",
                    used,
                ).fetchall()
            except duckdb.Error as exc:
                raise BigQueryApiError(400, "invalidQuery", _unrecognized(str(exc))) from None
            scanned.update(row[0] for row in result)
        return scanned


class _ColumnarLoader:
    """Nested rows flattened into typed columns, rebuilt as STRUCTs and LISTs inside DuckDB.

    Handing DuckDB Python dicts and lists row by row is slow; flat columns are not.
    """

    def __init__(self, schema: Sequence[Mapping[str, Any]]) -> None:
        self.schema = schema
        self.count = 0
        self._columns: dict[str, list[Any]] = {"__row": []}
        self._kinds: dict[str, str] = {}
        self._children: dict[str, dict[str, list[Any]]] = {}
        self._child_kinds: dict[str, dict[str, str]] = {}
        for column in schema:
            name = column["name"]
            if column.get("mode") == "REPEATED":
                kinds: dict[str, str] = {}
                if _is_record(column):
                    _flat_kinds(column.get("fields", []), "", kinds)
                else:
                    kinds["__value"] = column["type"].upper()
                self._child_kinds[name] = kinds
                self._children[name] = {
                    "__row": [],
                    "__ordinal": [],
                    **{path: [] for path in kinds},
                }
            elif _is_record(column):
                _flat_kinds([column], "", self._kinds)
            else:
                self._kinds[name] = column["type"].upper()
        for path in self._kinds:
            self._columns[path] = []
        # Per top-level column: how to spread a row's value over the flat columns.
        self._plan: list[tuple[str, str, Any]] = []
        for column in schema:
            name = column["name"]
            if column.get("mode") == "REPEATED":
                fields = column.get("fields", [])
                self._plan.append(
                    (name, "repeated", _record_plan(fields, "") if _is_record(column) else None)
                )
            elif _is_record(column):
                self._plan.append(
                    (
                        name,
                        "record",
                        [
                            (
                                f"{name}.__present",
                                None,
                                _record_plan(column.get("fields", []), f"{name}."),
                            )
                        ],
                    )
                )
            else:
                self._plan.append((name, "scalar", self._columns[name]))

    def add(self, row: Mapping[str, Any]) -> None:
        index = self.count
        self._columns["__row"].append(index)
        for name, kind, target in self._plan:
            value = row.get(name)
            if kind == "scalar":
                target.append(value)
            elif kind == "record":
                _flatten(target, value, self._columns)
            else:
                child = self._children[name]
                for ordinal, element in enumerate(value or ()):
                    child["__row"].append(index)
                    child["__ordinal"].append(ordinal)
                    if target is None:
                        child["__value"].append(element)
                    else:
                        _flatten(target, element, child)
        self.count += 1

    def frames(self) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        base = pd.DataFrame(
            {path: _series(values, self._kinds.get(path)) for path, values in self._columns.items()}
        )
        children = {
            name: pd.DataFrame(
                {
                    path: _series(values, self._child_kinds[name].get(path))
                    for path, values in columns.items()
                }
            )
            for name, columns in self._children.items()
        }
        return base, children

    def select_expressions(self) -> Iterable[str]:
        for column in self.schema:
            name = column["name"]
            if column.get("mode") == "REPEATED":
                yield f'COALESCE("{name}__list".items, CAST([] AS {_duck_type(column)})) AS "{name}"'
            elif _is_record(column):
                yield f'{_struct_expression(column, "", "base.")} AS "{name}"'
            else:
                yield f'CAST(base."{name}" AS {_duck_type(column)}) AS "{name}"'

    def element_expression(self, name: str) -> str:
        column = next(column for column in self.schema if column["name"] == name)
        if not _is_record(column):
            element = dict(column, mode="NULLABLE")
            return f"CAST(__value AS {_duck_type(element)})"
        inner = ", ".join(
            f'"{sub["name"]}" := '
            + (
                _struct_expression(sub, "", "")
                if _is_record(sub)
                else f'CAST("{sub["name"]}" AS {_duck_type(sub)})'
            )
            for sub in column.get("fields", [])
        )
        return f"struct_pack({inner})"


def _is_record(column: Mapping[str, Any]) -> bool:
    return column["type"].upper() in {"RECORD", "STRUCT"}


def _flat_kinds(fields: Sequence[Mapping[str, Any]], prefix: str, kinds: dict[str, str]) -> None:
    for sub in fields:
        path = f"{prefix}{sub['name']}"
        if sub.get("mode") == "REPEATED":
            raise ValueError("the sandbox does not load repeated fields inside records")
        if _is_record(sub):
            kinds[f"{path}.__present"] = "BOOLEAN"
            _flat_kinds(sub.get("fields", []), f"{path}.", kinds)
        else:
            kinds[path] = sub["type"].upper()


def _record_plan(fields: Sequence[Mapping[str, Any]], prefix: str) -> list[tuple[str, str, Any]]:
    """(flat path, field name, sub-plan or None) per field of a record."""
    plan = []
    for sub in fields:
        path = f"{prefix}{sub['name']}"
        if _is_record(sub):
            plan.append(
                (
                    path,
                    sub["name"],
                    [(f"{path}.__present", None, _record_plan(sub.get("fields", []), f"{path}."))],
                )
            )
        else:
            plan.append((path, sub["name"], None))
    return plan


def _flatten(plan: list[tuple[str, Any, Any]], value: Any, columns: dict[str, list[Any]]) -> None:
    for path, key, sub_plan in plan:
        if key is None:
            # A record marker: the value itself is the record.
            columns[path].append(value is not None)
            _flatten(sub_plan, value, columns)
            continue
        item = None if value is None else value.get(key)
        if sub_plan is None:
            columns[path].append(item)
        else:
            _flatten(sub_plan, item, columns)


def _struct_expression(column: Mapping[str, Any], prefix: str, source: str) -> str:
    path = f"{prefix}{column['name']}"
    inner = ", ".join(
        f'"{sub["name"]}" := '
        + (
            _struct_expression(sub, f"{path}.", source)
            if _is_record(sub)
            else f'CAST({source}"{path}.{sub["name"]}" AS {_duck_type(sub)})'
        )
        for sub in column.get("fields", [])
    )
    return f'CASE WHEN {source}"{path}.__present" THEN struct_pack({inner}) END'


def _series(values: list[Any], kind: str | None) -> pd.Series:
    if kind == "TIMESTAMP":
        return _timestamps(values)
    if kind in {"FLOAT", "FLOAT64"}:
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype=object)


def _timestamps(values: list[Any]) -> pd.Series:
    # Naive values are UTC already; aware ones are converted. DuckDB gets naive UTC.
    return pd.Series(pd.to_datetime(values, utc=True)).dt.tz_localize(None)


def _only_references(condition: exp.Expression, column: str) -> bool:
    if condition.find(exp.Subquery, exp.Select):
        return False
    columns = list(condition.find_all(exp.Column))
    return bool(columns) and all(
        item.name.lower() == column.lower() and len(item.parts) == 1 for item in columns
    )
