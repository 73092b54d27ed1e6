"""The billing-export queries, as GoogleSQL text plus bound parameters (pure).

Every value travels as a query parameter. Only the table name is spliced into the text, from a
:class:`~finops_pipeline.providers.gcp.table.BillingExportTable` that passed a strict pattern, and the
partition filter is one of a few fixed clauses chosen by the table's partitioning.

One cost query per billing export and date range feeds every registered project of that
export: it groups by project, and filters projects with ``IN UNNEST(@project_ids)``. BigQuery
bills the bytes of the referenced columns in the scanned partitions, which a filter on
``project.id`` does not reduce, so the bytes billed do not depend on the number of projects;
querying once per project would bill the same partitions once per project.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from finops_pipeline.providers.gcp.errors import PartitioningError
from finops_pipeline.providers.gcp.table import (
    BillingExportTable,
    PartitionKind,
    TablePartitioning,
    validate_project_id,
)
from finops_pipeline.sync.ranges import DateRange

#: The export column whose value is the load time; late rows carry a late export_time.
EXPORT_TIME_COLUMN = "export_time"
#: The export column of the usage hour's start; its UTC date is the usage day.
USAGE_START_COLUMN = "usage_start_time"

#: Result columns of :func:`build_cost_query`, in order.
COST_RESULT_COLUMNS: tuple[str, ...] = (
    "usage_date",
    "project_id",
    "service",
    "usage_type",
    "usage_unit",
    "currency",
    "unblended_cost",
    "net_unblended_cost",
    "usage_quantity",
    "last_export_time",
    "last_invoice_month",
    "provider_day_cost",
)

_COST_QUERY = """\
-- Costs, credits and usage arrive as FLOAT64. Each row's value is cast to NUMERIC (an exact
-- decimal with 9 places; the cast rounds half away from zero) before it is summed, so every SUM
-- is an exact decimal sum. A FLOAT64 SUM would not be: its last digits depend on the order
-- BigQuery adds the rows in, so two runs over the same rows could differ and look like a
-- restatement. The client returns NUMERIC as Python Decimal; no float arithmetic follows.
WITH export_rows AS (
  SELECT
    -- DATE() of a TIMESTAMP is its day in UTC: 23:30 and 00:30 UTC fall on different days.
    DATE(usage_start_time) AS usage_date,
    project.id AS project_id,
    service.description AS service,
    sku.description AS usage_type,
    usage.unit AS usage_unit,
    currency,
    CAST(cost AS NUMERIC) AS cost,
    -- The export's own value, unrounded, for the reconciliation total below.
    cost AS export_cost,
    -- One scalar subquery per row. A comma-join with UNNEST(credits) would repeat the row's
    -- cost once per credit (and drop rows without credits).
    IFNULL(
      (SELECT SUM(CAST(credit.amount AS NUMERIC)) FROM UNNEST(credits) AS credit), 0
    ) AS credits,
    CAST(usage.amount AS NUMERIC) AS usage_amount,
    export_time,
    invoice.month AS invoice_month
  FROM {table}
  WHERE usage_start_time >= @usage_start
    AND usage_start_time < @usage_end{partition_filter}{project_filter}
)
SELECT
  usage_date,
  project_id,
  service,
  usage_type,
  usage_unit,
  currency,
  SUM(cost) AS unblended_cost,
  SUM(cost + credits) AS net_unblended_cost,
  SUM(usage_amount) AS usage_quantity,
  MAX(export_time) AS last_export_time,
  -- A day's late rows may be billed in the next invoice month; the latest one decides.
  MAX(invoice_month) AS last_invoice_month,
  -- The provider's own total of the project's day and currency, repeated on each of its
  -- groups: the FLOAT64 costs summed as exported and rounded to NUMERIC once, not the sum of
  -- the rounded group sums above. The reconciliation check compares cost_data with it, so a
  -- group lost or changed between here and the table shows. Same job, same column: no bytes.
  CAST(
    SUM(SUM(export_cost)) OVER (PARTITION BY usage_date, project_id, currency) AS NUMERIC
  ) AS provider_day_cost
FROM export_rows
GROUP BY usage_date, project_id, service, usage_type, usage_unit, currency
"""

_WATERMARK_QUERY = """\
-- The newest export_time of each usage day, among rows exported since @exported_since. Late
-- rows land in newer partitions, so only the partitions loaded since then are scanned.
SELECT
  DATE(usage_start_time) AS usage_date,
  project.id AS project_id,
  MAX(export_time) AS last_export_time,
  COUNT(*) AS export_rows
FROM {table}
WHERE export_time >= @exported_since
  AND usage_start_time >= @usage_start{partition_filter}{project_filter}
GROUP BY usage_date, project_id
"""

_LOCATION_QUERY = """\
-- Where the project used anything lately: its zones and regions are where GCP Recommender can
-- have recommendations for it, so they are the locations its recommenders are asked at.
SELECT DISTINCT
  location.region AS region,
  location.zone AS zone
FROM {table}
WHERE usage_start_time >= @usage_start{partition_filter}{project_filter}
"""

#: Result columns of :func:`build_location_query`.
LOCATION_RESULT_COLUMNS: tuple[str, ...] = ("region", "zone")

# Lower bounds only: a row for usage day D is exported after D starts, and late rows land in
# newer partitions, so an upper bound would miss them.
_INGESTION_TIME_FILTER = "\n    AND _PARTITIONTIME >= @partition_start"
_EXPORT_TIME_FILTER = "\n    AND export_time >= @partition_start"
_PROJECT_FILTER = "\n    AND project.id IN UNNEST(@project_ids)"


@dataclass(frozen=True)
class QueryParameter:
    """One named query parameter; ``type`` is a GoogleSQL type name."""

    name: str
    type: str
    value: Any
    array: bool = False


@dataclass(frozen=True)
class BillingQuery:
    """SQL text, its parameters, and notes on how the scan is bounded."""

    sql: str
    parameters: tuple[QueryParameter, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def parameter(self, name: str) -> QueryParameter:
        """The parameter called ``name``."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _partition_filter(
    partitioning: TablePartitioning, floor_day: dt.date
) -> tuple[str, list[QueryParameter], list[str]]:
    """The partition-pruning clause for a scan that needs rows loaded on or after ``floor_day``."""
    kind = partitioning.kind
    if kind is PartitionKind.INGESTION_TIME:
        start = partitioning.partition_floor(floor_day)
        return (
            _INGESTION_TIME_FILTER,
            [QueryParameter("partition_start", "TIMESTAMP", start)],
            [f"scan bounded by _PARTITIONTIME >= {start:%Y-%m-%d %H:%M} UTC"],
        )
    if kind is PartitionKind.TIME_COLUMN and partitioning.field == EXPORT_TIME_COLUMN:
        start = _midnight(floor_day)
        return (
            _EXPORT_TIME_FILTER,
            [QueryParameter("partition_start", "TIMESTAMP", start)],
            [f"scan bounded by export_time >= {start:%Y-%m-%d} UTC"],
        )
    if kind is PartitionKind.TIME_COLUMN and partitioning.field == USAGE_START_COLUMN:
        return "", [], ["scan bounded by the usage_start_time partitioning column"]
    if partitioning.require_partition_filter:
        raise PartitioningError(
            f"The billing export table is {partitioning.describe()} and requires a filter on "
            "that column, which says nothing about usage days. Point the export at the table "
            "Cloud Billing created (ingestion-time partitioned) or at a view over it."
        )
    return "", [], [f"table {partitioning.describe()}: every query scans the whole table"]


def _project_filter(project_ids: Sequence[str] | None) -> tuple[str, list[QueryParameter]]:
    if project_ids is None:
        return "", []
    ids = sorted({validate_project_id(project_id) for project_id in project_ids})
    if not ids:
        raise ValueError("project_ids is empty; pass None to read every project")
    return _PROJECT_FILTER, [QueryParameter("project_ids", "STRING", ids, array=True)]


def build_cost_query(
    table: BillingExportTable,
    window: DateRange,
    partitioning: TablePartitioning,
    *,
    project_ids: Sequence[str] | None,
) -> BillingQuery:
    """The daily cost query for every day of ``window`` (inclusive), grouped by project.

    Args:
        table: The billing export table.
        window: Usage days, UTC.
        partitioning: The table's partitioning, from ``tables.get``.
        project_ids: The registered projects to return, or None for every project.

    Raises:
        PartitioningError: the table is partitioned on a column unrelated to time of usage or
            export and BigQuery requires a filter on it.
    """
    partition_clause, partition_parameters, notes = _partition_filter(partitioning, window.start)
    project_clause, project_parameters = _project_filter(project_ids)
    sql = _COST_QUERY.format(
        table=table.sql_reference,
        partition_filter=partition_clause,
        project_filter=project_clause,
    )
    parameters = (
        QueryParameter("usage_start", "TIMESTAMP", _midnight(window.start)),
        QueryParameter("usage_end", "TIMESTAMP", _midnight(window.end + dt.timedelta(days=1))),
        *partition_parameters,
        *project_parameters,
    )
    return BillingQuery(sql, parameters, tuple(notes))


def build_watermark_query(
    table: BillingExportTable,
    partitioning: TablePartitioning,
    *,
    exported_since: dt.datetime,
    usage_start: dt.date,
    project_ids: Sequence[str] | None,
) -> BillingQuery:
    """Per usage day since ``usage_start``, the newest export_time among rows exported since
    ``exported_since``: the cheap check of which days the export has changed.
    """
    if exported_since.tzinfo is None:
        raise ValueError("exported_since must be timezone-aware (UTC)")
    exported_since = exported_since.astimezone(dt.UTC)
    partition_clause, partition_parameters, notes = _partition_filter(
        partitioning, exported_since.date()
    )
    project_clause, project_parameters = _project_filter(project_ids)
    sql = _WATERMARK_QUERY.format(
        table=table.sql_reference,
        partition_filter=partition_clause,
        project_filter=project_clause,
    )
    parameters = (
        QueryParameter("exported_since", "TIMESTAMP", exported_since),
        QueryParameter("usage_start", "TIMESTAMP", _midnight(usage_start)),
        *partition_parameters,
        *project_parameters,
    )
    return BillingQuery(sql, parameters, tuple(notes))


def build_location_query(
    table: BillingExportTable,
    partitioning: TablePartitioning,
    *,
    project_id: str,
    usage_start: dt.date,
) -> BillingQuery:
    """The distinct regions and zones of ``project_id``'s usage since ``usage_start``.

    It reads four narrow columns (``project.id``, ``location.region``, ``location.zone`` and
    ``usage_start_time``) of the partitions loaded since then, so it bills BigQuery's
    10 MiB minimum for most exports.
    """
    partition_clause, partition_parameters, notes = _partition_filter(partitioning, usage_start)
    project_clause, project_parameters = _project_filter([project_id])
    sql = _LOCATION_QUERY.format(
        table=table.sql_reference,
        partition_filter=partition_clause,
        project_filter=project_clause,
    )
    parameters = (
        QueryParameter("usage_start", "TIMESTAMP", _midnight(usage_start)),
        *partition_parameters,
        *project_parameters,
    )
    return BillingQuery(sql, parameters, tuple(notes))
