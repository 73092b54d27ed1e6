"""One billing query per export and date range, split into each registered project's costs.

The rows come back grouped by usage day, project, service, SKU, unit and currency, with
NUMERIC sums as Python ``Decimal``. They become one :class:`ParsedCosts` per project, in the
shape the AWS collector produces, plus each usage day's ``max(export_time)`` watermark and
invoice month.

Column meanings, matching the AWS ones as closely as GCP allows:

* ``unblended_cost``: ``SUM(cost)``, the list-rate cost before credits.
* ``net_unblended_cost``: cost plus every credit (credits are negative): sustained and
  committed use discounts, free tier, promotions, reseller margin...
* ``amortized_cost``: the same as ``net_unblended_cost``. GCP bills commitments month by month
  as fees of their own SKUs, with nothing paid upfront to spread over the term, so the net
  cost is the usual stand-in (as in Koku and OpenCost).
* ``usage_quantity`` / ``usage_unit``: ``SUM(usage.amount)`` in ``usage.unit``, the SKU's base
  unit (seconds, byte-seconds, requests...), not the pricing unit.
* ``is_estimated``: the day's invoice month is still open (see
  :func:`~finops_pipeline.providers.gcp.restatement.invoice_month_open`).

Rows without a project (some taxes and support charges) belong to no registered project and
are not returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import pandas as pd

from finops_pipeline.providers.base import PARSED_COLUMNS, ParsedCosts
from finops_pipeline.providers.gcp.client import BillingExport, QueryOutcome
from finops_pipeline.providers.gcp.errors import BillingDataError
from finops_pipeline.providers.gcp.query import (
    COST_RESULT_COLUMNS,
    BillingQuery,
    build_cost_query,
    build_location_query,
    build_watermark_query,
)
from finops_pipeline.providers.gcp.recommendations import (
    LOCATION_LOOKBACK_DAYS,
    RecommenderLocations,
)
from finops_pipeline.providers.gcp.restatement import (
    INVOICE_MONTH_CLOSE_DAY,
    invoice_month_of,
    invoice_month_open,
    parse_invoice_month,
)
from finops_pipeline.providers.gcp.table import TablePartitioning
from finops_pipeline.sync.ranges import DateRange

PROVIDER = "gcp"
_AMOUNT_COLUMNS = ("unblended_cost", "credits", "net_unblended_cost", "usage_quantity")


class BillingQueryRunner(Protocol):
    """What the collector needs of :class:`~finops_pipeline.providers.gcp.client.BillingExportClient`."""

    export: BillingExport

    def table_partitioning(self) -> TablePartitioning: ...

    def run(self, query: BillingQuery) -> QueryOutcome: ...


@dataclass(frozen=True)
class BillingExportCosts:
    """One billing query's result, for every registered project of the export."""

    window: DateRange
    by_project: dict[str, ParsedCosts]
    #: max(export_time) per usage day, over the registered projects.
    watermarks: dict[dt.date, dt.datetime]
    #: The latest invoice month each usage day is billed to, over the registered projects.
    invoice_months: dict[dt.date, str]
    bytes_processed: int
    bytes_billed: int
    job_id: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: max(export_time) per usage day of each project (days with rows only).
    project_watermarks: dict[str, dict[dt.date, dt.datetime]] = field(default_factory=dict)
    #: The export's own cost total per (day, currency) of each project, from the same query.
    provider_totals: dict[str, dict[tuple[dt.date, str], Decimal]] = field(default_factory=dict)

    def for_project(self, project_id: str) -> ParsedCosts:
        """The costs of one registered project."""
        return self.by_project[project_id]

    def totals_for_project(self, project_id: str) -> dict[tuple[dt.date, str], Decimal]:
        """One registered project's own cost total per (day, currency)."""
        return self.provider_totals.get(project_id, {})


def _require(row: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = row.get(name)
    if not isinstance(value, kind):
        raise BillingDataError(
            f"The billing query returned a row whose {name} is "
            f"{type(value).__name__}, not {kind if isinstance(kind, type) else kind[0]}; the "
            "export table may not be a Cloud Billing export. Report this with the run id."
        )
    return value


def _decimal(row: Mapping[str, Any], name: str) -> Decimal:
    # NUMERIC arrives as Decimal; a float here would mean the sums were not exact.
    value = _require(row, name, Decimal)
    if not value.is_finite():
        raise BillingDataError(f"The billing query returned a non-finite {name}.")
    return value


def parse_cost_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    window: DateRange,
    project_ids: Sequence[str],
    as_of: dt.date,
    invoice_close_day: int = INVOICE_MONTH_CLOSE_DAY,
) -> tuple[
    dict[str, ParsedCosts],
    dict[dt.date, dt.datetime],
    dict[dt.date, str],
    dict[str, dict[dt.date, dt.datetime]],
]:
    """Split the cost query's rows by project.

    Every project gets every day of ``window`` in ``estimated_by_day``: a day without rows is
    still estimated while its invoice month is open.

    Returns:
        (costs by project, watermark per usage day, latest invoice month per usage day,
        watermark per usage day of each project).

    Raises:
        BillingDataError: a row outside the window or the projects, or not of the expected types.
    """
    wanted = set(project_ids)
    records: dict[str, list[tuple[Any, ...]]] = {project: [] for project in wanted}
    project_months: dict[tuple[str, dt.date], str] = {}
    watermarks: dict[dt.date, dt.datetime] = {}
    project_watermarks: dict[str, dict[dt.date, dt.datetime]] = {project: {} for project in wanted}
    invoice_months: dict[dt.date, str] = {}
    for row in rows:
        missing = [name for name in COST_RESULT_COLUMNS if name not in row]
        if missing:
            raise BillingDataError(f"The billing query returned rows without {', '.join(missing)}.")
        day = _require(row, "usage_date", dt.date)
        if not window.start <= day <= window.end:
            raise BillingDataError(
                f"The billing query returned usage day {day}, outside {window}; nothing was "
                "loaded. Report this with the run id."
            )
        project = row["project_id"]
        if project not in wanted:
            if project is None:
                continue
            raise BillingDataError(
                "The billing query returned a project that was not asked for; nothing was loaded."
            )
        exported = _require(row, "last_export_time", dt.datetime)
        if exported.tzinfo is None:
            raise BillingDataError("The billing query returned an export_time without a zone.")
        month = _require(row, "last_invoice_month", str)
        try:
            parse_invoice_month(month)
        except ValueError:
            raise BillingDataError(
                "The billing query returned an invoice month that is not YYYYMM."
            ) from None
        if day not in watermarks or exported > watermarks[day]:
            watermarks[day] = exported
        marks = project_watermarks[project]
        if day not in marks or exported > marks[day]:
            marks[day] = exported
        invoice_months[day] = max(month, invoice_months.get(day, month))
        project_months[(project, day)] = max(month, project_months.get((project, day), month))
        net = _decimal(row, "net_unblended_cost")
        records[project].append(
            (
                day,
                row["service"],
                row["usage_type"],
                _decimal(row, "unblended_cost"),
                net,  # amortized_cost: see the module docstring
                net,
                _decimal(row, "usage_quantity"),
                _require(row, "currency", str),
                row["usage_unit"] or "",
            )
        )
    by_project: dict[str, ParsedCosts] = {}
    for project_records in records.values():
        # BigQuery returns groups in no particular order; a stable order keeps runs comparable.
        project_records.sort(
            key=lambda record: (
                record[0],
                *(str(part) for part in record[1:3]),
                record[8],
                record[7],
            )
        )
    for project in sorted(wanted):
        estimated_by_day = {}
        day = window.start
        while day <= window.end:
            month = project_months.get((project, day), invoice_month_of(day))
            estimated_by_day[day] = invoice_month_open(month, as_of, close_day=invoice_close_day)
            day += dt.timedelta(days=1)
        rows_with_flag = [(*record, estimated_by_day[record[0]]) for record in records[project]]
        frame = pd.DataFrame.from_records(rows_with_flag, columns=list(PARSED_COLUMNS))
        frame["is_estimated"] = frame["is_estimated"].astype(bool)
        by_project[project] = ParsedCosts(frame=frame, estimated_by_day=estimated_by_day)
    return by_project, watermarks, invoice_months, project_watermarks


def parse_provider_day_totals(
    rows: Iterable[Mapping[str, Any]], *, project_ids: Sequence[str]
) -> dict[str, dict[tuple[dt.date, str], Decimal]]:
    """The export's own total per project, day and currency (``provider_day_cost``).

    The query repeats each total on every group of its project, day and currency; they must
    agree, or the answer cannot be trusted.

    Raises:
        BillingDataError: a total missing, not a NUMERIC, or different between two groups.
    """
    wanted = set(project_ids)
    totals: dict[str, dict[tuple[dt.date, str], Decimal]] = {project: {} for project in wanted}
    for row in rows:
        project = row.get("project_id")
        if project not in wanted:
            continue  # parse_cost_rows rejects projects not asked for
        key = (_require(row, "usage_date", dt.date), _require(row, "currency", str))
        amount = _decimal(row, "provider_day_cost")
        known = totals[project].setdefault(key, amount)
        if known != amount:
            raise BillingDataError(
                f"The billing query returned two different totals for one project on {key[0]} "
                f"in {key[1]}; nothing was loaded. Report this with the run id."
            )
    return totals


def collect_billing_export(
    runner: BillingQueryRunner,
    *,
    project_ids: Sequence[str],
    window: DateRange,
    as_of: dt.date,
    partitioning: TablePartitioning | None = None,
) -> BillingExportCosts:
    """Run the one cost query for ``window`` and split it by project.

    Args:
        runner: The export's client.
        project_ids: The registered projects of this export.
        window: Usage days (inclusive, UTC).
        as_of: Today (UTC), which decides which invoice months are still open.
        partitioning: The table's partitioning if already known; read with ``tables.get``
            otherwise.
    """
    if not project_ids:
        raise ValueError("collect_billing_export needs at least one project")
    if partitioning is None:
        partitioning = runner.table_partitioning()
    query = build_cost_query(
        runner.export.table, window, partitioning, project_ids=list(project_ids)
    )
    outcome = runner.run(query)
    rows = list(outcome.rows)
    by_project, watermarks, invoice_months, project_watermarks = parse_cost_rows(
        rows, window=window, project_ids=project_ids, as_of=as_of
    )
    return BillingExportCosts(
        window=window,
        by_project=by_project,
        watermarks=watermarks,
        invoice_months=invoice_months,
        bytes_processed=outcome.bytes_processed,
        bytes_billed=outcome.bytes_billed,
        job_id=outcome.job_id,
        notes=outcome.notes,
        project_watermarks=project_watermarks,
        provider_totals=parse_provider_day_totals(rows, project_ids=project_ids),
    )


def read_project_watermarks(
    runner: BillingQueryRunner,
    *,
    project_ids: Sequence[str],
    exported_since: dt.datetime,
    usage_start: dt.date,
    partitioning: TablePartitioning | None = None,
) -> tuple[dict[str, dict[dt.date, dt.datetime]], QueryOutcome]:
    """max(export_time) per project and usage day, among rows exported since ``exported_since``.

    Late rows land in newer partitions, so this scans only the partitions loaded since then,
    and three narrow columns: the cheap check of which days the export changed.
    """
    if partitioning is None:
        partitioning = runner.table_partitioning()
    query = build_watermark_query(
        runner.export.table,
        partitioning,
        exported_since=exported_since,
        usage_start=usage_start,
        project_ids=list(project_ids),
    )
    outcome = runner.run(query)
    wanted = set(project_ids)
    watermarks: dict[str, dict[dt.date, dt.datetime]] = {}
    for row in outcome.rows:
        project = row.get("project_id")
        if project not in wanted:
            continue
        day = _require(row, "usage_date", dt.date)
        exported = _require(row, "last_export_time", dt.datetime)
        watermarks.setdefault(project, {})[day] = exported
    return watermarks, outcome


def read_watermarks(
    runner: BillingQueryRunner,
    *,
    project_ids: Sequence[str],
    exported_since: dt.datetime,
    usage_start: dt.date,
    partitioning: TablePartitioning | None = None,
) -> tuple[dict[dt.date, dt.datetime], QueryOutcome]:
    """max(export_time) per usage day, over the projects, among rows exported since
    ``exported_since``."""
    by_project, outcome = read_project_watermarks(
        runner,
        project_ids=project_ids,
        exported_since=exported_since,
        usage_start=usage_start,
        partitioning=partitioning,
    )
    watermarks: dict[dt.date, dt.datetime] = {}
    for marks in by_project.values():
        for day, exported in marks.items():
            if day not in watermarks or exported > watermarks[day]:
                watermarks[day] = exported
    return watermarks, outcome


def read_project_locations(
    runner: BillingQueryRunner,
    *,
    project_id: str,
    as_of: dt.date,
    partitioning: TablePartitioning | None = None,
) -> tuple[RecommenderLocations, QueryOutcome]:
    """The zones and regions where ``project_id`` used anything in the
    :data:`~finops_pipeline.providers.gcp.recommendations.LOCATION_LOOKBACK_DAYS` days before
    ``as_of``: where its Recommender lists are asked."""
    if partitioning is None:
        partitioning = runner.table_partitioning()
    query = build_location_query(
        runner.export.table,
        partitioning,
        project_id=project_id,
        usage_start=as_of - dt.timedelta(days=LOCATION_LOOKBACK_DAYS),
    )
    outcome = runner.run(query)
    return RecommenderLocations.from_export_rows(outcome.rows), outcome
