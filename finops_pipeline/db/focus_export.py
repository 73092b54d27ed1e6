"""Exporting one tenant's ``cost_data_focus`` rows (FOCUS 1.2) as CSV or Parquet.

The rows are read as ``finops_reporting`` inside a tenant transaction: the same Row-Level
Security path a dashboard takes, so an export can only ever hold the rows of the tenant it was
asked for, whatever role the caller logged in as. They are streamed with a server-side cursor
and written batch by batch, so memory stays flat however long the range.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from finops_pipeline.db.tenants import PIPELINE_ROLE, REPORTING_ROLE, tenant_transaction
from finops_pipeline.errors import ConfigurationError

#: The view's columns in order: FOCUS 1.2 columns first (alphabetical), then custom x_ columns.
FOCUS_COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "x_TenantId",
    "x_CloudAccountId",
    "x_Provider",
    "x_UsageType",
    "x_AmortizedCost",
    "x_NetUnblendedCost",
    "x_IsEstimated",
    "x_UsageDate",
)

DECIMAL_COLUMNS = frozenset(
    {
        "BilledCost",
        "ConsumedQuantity",
        "ContractedCost",
        "EffectiveCost",
        "ListCost",
        "PricingQuantity",
        "x_AmortizedCost",
        "x_NetUnblendedCost",
    }
)
TIMESTAMP_COLUMNS = frozenset(
    {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
)

EXPORT_FORMATS = ("csv", "parquet")

#: Rows per fetch from the server-side cursor, and per Parquet row group batch.
DEFAULT_BATCH_ROWS = 10_000

# Cost Explorer sends 10 decimal places; Parquet needs a fixed scale, so keep 12 (Azure's float
# costs parsed as Decimal can carry more, and are rounded half-even at the 12th place).
PARQUET_DECIMAL_SCALE = 12

# The view's own key order, so two exports of the same data are byte-identical.
_SELECT = sql.SQL(
    "SELECT {columns} FROM cost_data_focus "
    'WHERE "x_UsageDate" >= %s AND "x_UsageDate" <= %s '
    'ORDER BY "x_CloudAccountId", "x_UsageDate", "ServiceName", "x_UsageType"'
).format(columns=sql.SQL(", ").join(sql.Identifier(column) for column in FOCUS_COLUMNS))


@contextmanager
def focus_rows(
    connection: psycopg.Connection,
    tenant_id: str,
    start: dt.date,
    end: dt.date,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[Iterator[list[tuple[Any, ...]]]]:
    """Batches of ``tenant_id``'s FOCUS rows for ``start``..``end`` (inclusive).

    Reads as ``finops_reporting`` in a tenant transaction, so Row-Level Security admits only
    that tenant's rows, whatever the login. Every check runs on entering, before a row is
    read; the transaction lasts until the block ends.

    Args:
        connection: An autocommit connection whose login may ``SET ROLE finops_reporting``
            (members of ``finops_pipeline`` may, after migration 0004; superusers may).
        tenant_id: The tenant to export.
        start: First usage day (UTC).
        end: Last usage day (UTC), inclusive.
        batch_rows: Rows per batch.

    Raises:
        ConfigurationError: the range is reversed, the tenant is unknown, or the login cannot
            take the reporting role.
    """
    if end < start:
        raise ConfigurationError(f"--end {end} is before --start {start}; give an inclusive range.")
    with tenant_transaction(connection, tenant_id):
        _become_reporting_role(connection)
        # Under the reporting role RLS shows only this tenant's rows, so this asks whether the
        # tenant has accounts or cost history at all (not every tenant has a `tenants` row).
        known = connection.execute(
            "SELECT EXISTS (SELECT 1 FROM cloud_accounts) OR EXISTS (SELECT 1 FROM cost_data)"
        ).fetchone()
        if not (known and known[0]):
            raise ConfigurationError(
                f"Tenant {tenant_id!r} is unknown; `finops accounts list` shows the tenants."
            )
        with connection.cursor(name=f"focus_export_{uuid.uuid4().hex[:8]}") as cursor:
            cursor.itersize = batch_rows
            cursor.execute(_SELECT, (start, end))
            yield _batches(cursor, batch_rows)


def _batches(cursor: psycopg.ServerCursor, batch_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    while batch := cursor.fetchmany(batch_rows):
        yield batch


def _become_reporting_role(connection: psycopg.Connection) -> None:
    try:
        connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(REPORTING_ROLE)))
    except psycopg.errors.InsufficientPrivilege:
        raise ConfigurationError(
            f"Database role {connection.info.user} may not act as {REPORTING_ROLE}, which "
            f"tenant exports read through. As a superuser run: GRANT {REPORTING_ROLE} TO "
            f"{PIPELINE_ROLE}; (or to this login)."
        ) from None


def format_csv_value(value: Any) -> str:
    """One value as FOCUS wants it in text: plain decimals, ISO 8601 UTC with Z, '' for NULL."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent notation
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def write_focus_csv(batches: Iterator[Sequence[tuple[Any, ...]]], stream: IO[str]) -> int:
    """Write a header and every row as CSV; returns the number of rows."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)
    rows = 0
    for batch in batches:
        writer.writerows([format_csv_value(value) for value in row] for row in batch)
        rows += len(batch)
    return rows


def parquet_schema() -> Any:
    """The Arrow schema of an export: exact decimals, UTC timestamps, strings."""
    import pyarrow as pa

    fields = []
    for column in FOCUS_COLUMNS:
        if column in DECIMAL_COLUMNS:
            kind = pa.decimal128(38, PARQUET_DECIMAL_SCALE)
        elif column in TIMESTAMP_COLUMNS:
            kind = pa.timestamp("s", tz="UTC")
        elif column == "x_IsEstimated":
            kind = pa.bool_()
        elif column == "x_UsageDate":
            kind = pa.date32()
        else:
            kind = pa.string()
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


def write_focus_parquet(batches: Iterator[Sequence[tuple[Any, ...]]], path: Path) -> int:
    """Write every row to a Parquet file at ``path``, one row group per batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            columns = [
                _arrow_column(name, values, field.type)
                for name, values, field in zip(
                    FOCUS_COLUMNS, zip(*batch, strict=True), schema, strict=True
                )
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            rows += len(batch)
        if rows == 0:
            writer.write_table(schema.empty_table())
    return rows


def _arrow_column(name: str, values: Sequence[Any], kind: Any) -> Any:
    import pyarrow as pa

    if name == "x_CloudAccountId":
        values = [None if value is None else str(value) for value in values]
    if name in DECIMAL_COLUMNS:
        try:
            return pa.array(values, type=kind)
        except pa.ArrowInvalid:  # more places than the file's scale: round half-even
            quantum = Decimal(1).scaleb(-PARQUET_DECIMAL_SCALE)
            values = [None if value is None else value.quantize(quantum) for value in values]
    return pa.array(values, type=kind)


def export_focus(
    connection: psycopg.Connection,
    tenant_id: str,
    start: dt.date,
    end: dt.date,
    *,
    export_format: str,
    output: Path | IO[str],
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> int:
    """Export one tenant's FOCUS rows for ``start``..``end`` (inclusive); returns the row count.

    A file is written beside its final name and renamed into place only when complete, so a
    failed export never leaves a truncated file behind. CSV may also go to a text stream.
    """
    if export_format not in EXPORT_FORMATS:
        raise ConfigurationError(f"Unknown export format {export_format!r}; use csv or parquet.")
    if export_format == "parquet" and not isinstance(output, Path):
        raise ConfigurationError("Parquet needs a file; pass --output FILE.")
    with focus_rows(connection, tenant_id, start, end, batch_rows=batch_rows) as batches:
        if not isinstance(output, Path):
            return write_focus_csv(batches, output)
        partial = output.with_name(f".{output.name}.partial")
        try:
            if export_format == "csv":
                with partial.open("w", newline="", encoding="utf-8") as stream:
                    rows = write_focus_csv(batches, stream)
            else:
                rows = write_focus_parquet(batches, partial)
            os.replace(partial, output)
        except BaseException:
            with suppress(FileNotFoundError):
                partial.unlink()
            raise
    return rows
