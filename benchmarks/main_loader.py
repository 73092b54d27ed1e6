"""The loader as it was before per-day digests (main at the scale issue), kept verbatim.

The load benchmark runs it beside the current loader so that before and after are measured in
the same run on the same machine. It is a benchmark baseline only; nothing imports it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import psycopg
from psycopg import sql

from finops_pipeline.constants import COST_COLUMNS, COST_KEY_COLUMNS, COST_VALUE_COLUMNS
from finops_pipeline.errors import DatabaseConnectionLostError, DatabaseError

_STAGING = "cost_data_staging"
_LOCK_NAMESPACE = "finops.cost_data"


@dataclass(frozen=True)
class WindowLoadStats:
    """What a window replacement changed."""

    inserted: int  # keys that were not in the window before
    restated: int  # keys whose values changed
    removed: int  # keys the provider no longer returns
    unchanged: int

    @property
    def rows_written(self) -> int:
        return self.inserted + self.restated

    @property
    def rows_in_window(self) -> int:
        return self.inserted + self.restated + self.unchanged


def replace_cost_window(
    connection: psycopg.Connection,
    rows: pd.DataFrame,
    *,
    tenant_id: str,
    cloud_account_id: str,
    provider: str,
    start: dt.date,
    end_inclusive: dt.date,
    run_id: str | None,
) -> WindowLoadStats:
    """Make the window's rows in ``cost_data`` equal ``rows``, atomically.

    Args:
        connection: A psycopg 3 connection outside any transaction.
        rows: Normalised rows in :data:`COST_COLUMNS` order, unique on the key, all inside the
            window and for this tenant, account and provider.
        tenant_id: The account's tenant.
        cloud_account_id: The account's id.
        provider: The account's provider.
        start: First day of the window.
        end_inclusive: Last day of the window.
        run_id: The Dagster run writing the rows.

    Raises:
        DatabaseConnectionLostError: the connection dropped mid-load; nothing changed, and the
            connection is unusable.
        DatabaseError: the load failed; nothing in the window changed.
    """
    window = {
        "tenant_id": tenant_id,
        "cloud_account_id": cloud_account_id,
        "provider": provider,
        "start": start,
        "end": end_inclusive,
        "run_id": run_id,
    }
    try:
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"{_LOCK_NAMESPACE}:{tenant_id}:{cloud_account_id}",),
            )
            cursor.execute(_WINDOW_HAS_ROWS, window)
            row = cursor.fetchone()
            if not (row and row[0]):
                if row and row[1]:
                    # PostgreSQL refuses COPY FROM into a table whose row-level security
                    # applies to the current role (any login that is not a superuser or
                    # BYPASSRLS, since cost_data forces it); go through staging instead.
                    cursor.execute(_CREATE_STAGING)
                    _copy_rows(cursor, _STAGING, rows, run_id=None)
                    cursor.execute(_INSERT_ALL, window)
                else:
                    _copy_rows(cursor, "cost_data", rows, run_id=run_id)
                return WindowLoadStats(inserted=len(rows), restated=0, removed=0, unchanged=0)
            # Right after a bulk load the window's statistics are stale (often "1 row"), and
            # the planner then picks a nested-loop anti-join that rescans staging per row:
            # quadratic. Hash joins are right for every window size here.
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute(_CREATE_STAGING)
            _copy_rows(cursor, _STAGING, rows, run_id=None)
            # Without statistics the planner assumes a tiny temp table and may pick nested
            # loops, which turn the anti-joins below quadratic.
            cursor.execute(f"ANALYZE {_STAGING}")
            cursor.execute(_DELETE_CHANGED_OR_VANISHED, window)
            deleted = cursor.fetchone()
            restated, removed = (deleted[0], deleted[1]) if deleted else (0, 0)
            cursor.execute(_INSERT_MISSING, window)
            inserted_total = cursor.rowcount
    except psycopg.Error as error:
        if connection.broken:
            raise DatabaseConnectionLostError(
                f"The connection to PostgreSQL was lost while loading {start}..{end_inclusive} "
                f"for account {cloud_account_id} ({type(error).__name__}); the window was rolled "
                "back and its old rows are intact. Re-run once the database is reachable."
            ) from error
        raise DatabaseError(
            f"Loading {start}..{end_inclusive} for account {cloud_account_id} failed "
            f"({type(error).__name__}); the window was rolled back and its old rows are intact. "
            "Check the database and re-run the partitions."
        ) from error
    return WindowLoadStats(
        inserted=inserted_total - restated,
        restated=restated,
        removed=removed,
        unchanged=len(rows) - inserted_total,
    )


def _copy_rows(
    cursor: psycopg.Cursor, table: str, rows: pd.DataFrame, *, run_id: str | None
) -> None:
    columns = [*COST_COLUMNS, "run_id"] if run_id is not None else list(COST_COLUMNS)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        # Stream tuples straight from the frame; building a CSV first costs more than the COPY.
        if run_id is None:
            for record in rows.itertuples(index=False, name=None):
                copy.write_row(record)
        else:
            for record in rows.itertuples(index=False, name=None):
                copy.write_row((*record, run_id))


_WINDOW_FILTER = """
    tenant_id = %(tenant_id)s AND cloud_account_id = %(cloud_account_id)s
    AND date BETWEEN %(start)s AND %(end)s AND provider = %(provider)s
"""

_WINDOW_HAS_ROWS = f"""
    SELECT EXISTS (SELECT 1 FROM cost_data WHERE {_WINDOW_FILTER}),
           row_security_active('cost_data')
"""

_CREATE_STAGING = f"""
    CREATE TEMP TABLE {_STAGING} ON COMMIT DROP AS
    SELECT {", ".join(COST_COLUMNS)} FROM cost_data WITH NO DATA
"""

_KEY_MATCH = " AND ".join(f"s.{c} = c.{c}" for c in COST_KEY_COLUMNS)
_VALUES_MATCH = " AND ".join(f"s.{c} IS NOT DISTINCT FROM c.{c}" for c in COST_VALUE_COLUMNS)

# A row survives only if staging holds the same key with the same values.
_DELETE_CHANGED_OR_VANISHED = f"""
    WITH deleted AS (
        DELETE FROM cost_data c
        WHERE {_WINDOW_FILTER}
          AND NOT EXISTS (
              SELECT 1 FROM {_STAGING} s WHERE {_KEY_MATCH} AND {_VALUES_MATCH}
          )
        RETURNING {", ".join(f"c.{col}" for col in COST_KEY_COLUMNS)}
    )
    -- A LEFT JOIN (hashed) rather than per-row EXISTS, which would rescan staging per row.
    SELECT count(s.service), count(*) - count(s.service)
    FROM deleted c LEFT JOIN {_STAGING} s ON {_KEY_MATCH}
"""

_INSERT_ALL = f"""
    INSERT INTO cost_data ({", ".join(COST_COLUMNS)}, run_id)
    SELECT {", ".join(COST_COLUMNS)}, %(run_id)s FROM {_STAGING}
"""

# The window filter on c lets the planner use the unique index for just this window instead of
# scanning all of cost_data.
_INSERT_MISSING = f"""
    INSERT INTO cost_data ({", ".join(COST_COLUMNS)}, run_id)
    SELECT {", ".join(f"s.{c}" for c in COST_COLUMNS)}, %(run_id)s
    FROM {_STAGING} s
    WHERE NOT EXISTS (
        SELECT 1 FROM cost_data c
        WHERE c.tenant_id = %(tenant_id)s AND c.cloud_account_id = %(cloud_account_id)s
          AND c.date BETWEEN %(start)s AND %(end)s AND c.provider = %(provider)s
          AND {_KEY_MATCH}
    )
"""


def count_window_rows(
    connection: psycopg.Connection,
    *,
    tenant_id: str,
    cloud_account_id: str,
    provider: str,
    start: dt.date,
    end_inclusive: dt.date,
) -> int:
    """How many rows ``cost_data`` holds for one account's window."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM cost_data WHERE {_WINDOW_FILTER}",
            {
                "tenant_id": tenant_id,
                "cloud_account_id": cloud_account_id,
                "provider": provider,
                "start": start,
                "end": end_inclusive,
            },
        )
        row = cursor.fetchone()
        return int(row[0]) if row else 0


def build_decimal_rows(
    count: int, *, tenant: str, account: str, start: dt.date, groups_per_day: int
) -> pd.DataFrame:
    """The benchmark's rows as main built them: a frame of ``Decimal`` objects."""
    records = []
    for index in range(count):
        day, group = divmod(index, groups_per_day)
        cost = Decimal(f"{(index * 7919) % 100000 / 1000 + 0.0001:.10f}")
        records.append(
            (
                tenant,
                account,
                start + dt.timedelta(days=day),
                "aws",
                f"Service {group % 60}",
                f"USW2-UsageType-{group}",
                cost,
                cost,
                cost * Decimal("0.97"),
                Decimal(group),
                "USD",
                "Hrs",
                False,
            )
        )
    return pd.DataFrame.from_records(records, columns=list(COST_COLUMNS))
