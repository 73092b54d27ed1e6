"""The idempotent load of one account's date window into ``cost_data``.

Each window is replaced in one transaction under an advisory lock on (tenant, account):

0. Every day of the window gets a digest of the provider's rows for it
   (:mod:`finops_pipeline.db.cost_digests`). Days whose digest and row count equal what the
   loader stored when it last wrote them (``cost_data_days``) are skipped before any COPY:
   an unchanged re-load writes nothing and leaves no dead tuples.
1. If the changed days hold no rows yet (the common first load and backfill), COPY straight
   into ``cost_data``.
2. Otherwise COPY the changed days' rows into a temporary staging table, delete the rows of
   those days that vanished or whose values changed, and insert the staging rows whose key is
   no longer present. Unchanged rows are not rewritten, which keeps restatement loads fast and
   avoids table bloat.
3. The changed days' markers get their new row count and digest.

Either way the window ends up equal to what the provider returned; on any error the transaction
rolls back and the old rows (and digests) stay exactly as they were.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from finops_pipeline.constants import COST_COLUMNS, COST_KEY_COLUMNS, COST_VALUE_COLUMNS
from finops_pipeline.db.cost_digests import DayDigest, day_digests
from finops_pipeline.errors import DatabaseConnectionLostError, DatabaseError

_STAGING = "cost_data_staging"
_LOCK_NAMESPACE = "finops.cost_data"
_COPY_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class WindowLoadStats:
    """What a window replacement changed."""

    inserted: int  # keys that were not in the window before
    restated: int  # keys whose values changed
    removed: int  # keys the provider no longer returns
    unchanged: int
    #: Days of the window whose digest matched, so nothing of them was compared or written.
    days_skipped: int = 0
    days_written: int = 0

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
    digests = day_digests(rows, provider=provider, start=start, end_inclusive=end_inclusive)
    lock_key = f"{_LOCK_NAMESPACE}:{tenant_id}:{cloud_account_id}"
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
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
            # Read under the lock: another run may have just rewritten these days.
            cursor.execute(_STORED_DIGESTS, window)
            stored = {day: DayDigest(count, digest) for day, count, digest in cursor.fetchall()}
            changed = [day for day, digest in digests.items() if stored.get(day) != digest]
            unchanged_rows = sum(digests[day].row_count for day in digests.keys() - set(changed))
            skipped = len(digests) - len(changed)
            if not changed:
                return WindowLoadStats(0, 0, 0, unchanged_rows, days_skipped=skipped)
            load = rows if skipped == 0 else rows[rows["date"].isin(changed)]
            window["days"] = changed
            stats = _replace_days(cursor, load, window, run_id=run_id)
            cursor.execute(
                _UPSERT_DIGESTS,
                {
                    **window,
                    "row_counts": [digests[day].row_count for day in changed],
                    "digests": [digests[day].digest for day in changed],
                },
            )
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
        inserted=stats.inserted,
        restated=stats.restated,
        removed=stats.removed,
        unchanged=stats.unchanged + unchanged_rows,
        days_skipped=skipped,
        days_written=len(changed),
    )


def _replace_days(
    cursor: psycopg.Cursor, rows: pd.DataFrame, window: dict[str, object], *, run_id: str | None
) -> WindowLoadStats:
    """Make the rows of ``window["days"]`` equal ``rows`` (all inside those days)."""
    cursor.execute(_DAYS_HAVE_ROWS, window)
    row = cursor.fetchone()
    if not (row and row[0]):
        if row and row[1]:
            # PostgreSQL refuses COPY FROM into a table whose row-level security applies to
            # the current role (any login that is not a superuser or BYPASSRLS, since
            # cost_data forces it); go through staging instead.
            cursor.execute(_CREATE_STAGING)
            _copy_rows(cursor, _STAGING, rows, run_id=None)
            cursor.execute(_INSERT_ALL, window)
        else:
            _copy_rows(cursor, "cost_data", rows, run_id=run_id)
        return WindowLoadStats(inserted=len(rows), restated=0, removed=0, unchanged=0)
    # Right after a bulk load the window's statistics are stale (often "1 row"), and the
    # planner then picks a nested-loop anti-join that rescans staging per row: quadratic.
    # Hash joins are right for every window size here.
    cursor.execute("SET LOCAL enable_nestloop = off")
    cursor.execute(_CREATE_STAGING)
    _copy_rows(cursor, _STAGING, rows, run_id=None)
    # Without statistics the planner assumes a tiny temp table and may pick nested loops,
    # which turn the anti-joins below quadratic.
    cursor.execute(f"ANALYZE {_STAGING}")
    # One full join finds every difference; the delete and insert then touch only those.
    cursor.execute(_CREATE_DIFF, window)
    cursor.execute(_COUNT_DIFF)
    counted = cursor.fetchone()
    inserted, restated, removed = counted if counted else (0, 0, 0)
    cursor.execute(_DELETE_DIFF)
    cursor.execute(_INSERT_DIFF, window)
    return WindowLoadStats(
        inserted=inserted,
        restated=restated,
        removed=removed,
        unchanged=len(rows) - inserted - restated,
    )


def _copy_rows(
    cursor: psycopg.Cursor, table: str, rows: pd.DataFrame, *, run_id: str | None
) -> None:
    columns = [*COST_COLUMNS, "run_id"] if run_id is not None else list(COST_COLUMNS)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        # Arrow writes each batch as CSV in C++: far cheaper than one Python write_row per row,
        # and it never holds more than a batch of text. Amounts travel as their exact decimal
        # text; strings are always quoted and NULLs never are, which is how PostgreSQL's CSV
        # format tells an empty string from NULL.
        for offset in range(0, len(rows), _COPY_BATCH_ROWS):
            batch = rows.iloc[offset : offset + _COPY_BATCH_ROWS]
            copy.write(csv_batch(batch, run_id=run_id))


def csv_batch(rows: pd.DataFrame, *, run_id: str | None) -> bytes:
    """``rows`` in :data:`COST_COLUMNS` order (plus ``run_id``) as headerless CSV for COPY."""
    arrays = [_arrow_column(rows[name]) for name in COST_COLUMNS]
    names = list(COST_COLUMNS)
    if run_id is not None:
        arrays.append(pa.array([run_id] * len(rows), type=pa.string()))
        names.append("run_id")
    buffer = pa.BufferOutputStream()
    pa_csv.write_csv(
        pa.Table.from_arrays(arrays, names=names),
        buffer,
        pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    return buffer.getvalue().to_pybytes()


def _arrow_column(column: pd.Series) -> pa.Array:
    """One column as Arrow: Decimals, UUIDs and other objects as their text, days as date32."""
    try:
        array = pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is not None and pa.types.is_timestamp(array.type):
        return array.cast(pa.date32())
    if array is not None and _copies_as_is(array.type):
        return array
    # Decimals become their text, never a fixed-scale Arrow decimal that could round them;
    # anything else (UUIDs, mixed objects) is written as PostgreSQL would read its str().
    texts = [None if value is None or value is pd.NA else str(value) for value in column]
    return pa.array(texts, type=pa.string())


def _copies_as_is(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_date32(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_null(arrow_type)
    )


_WINDOW_FILTER = """
    tenant_id = %(tenant_id)s AND cloud_account_id = %(cloud_account_id)s
    AND date BETWEEN %(start)s AND %(end)s AND provider = %(provider)s
"""

_DAYS_FILTER = """
    tenant_id = %(tenant_id)s AND cloud_account_id = %(cloud_account_id)s
    AND date = ANY(%(days)s::date[]) AND provider = %(provider)s
"""

_DAYS_HAVE_ROWS = f"""
    SELECT EXISTS (SELECT 1 FROM cost_data WHERE {_DAYS_FILTER}),
           row_security_active('cost_data')
"""

# A stored digest counts only while the day still holds the rows it describes: a day whose
# rows were deleted or added outside the loader (a purge, a manual fix) has another count,
# so it gets no digest here and is rewritten.
_STORED_DIGESTS = """
    SELECT m.date, m.row_count, m.content_digest
    FROM cost_data_days AS m
    WHERE m.tenant_id = %(tenant_id)s AND m.cloud_account_id = %(cloud_account_id)s
      AND m.date BETWEEN %(start)s AND %(end)s AND m.content_digest IS NOT NULL
      AND m.row_count = (
          SELECT count(*) FROM cost_data AS c
          WHERE c.tenant_id = m.tenant_id AND c.cloud_account_id = m.cloud_account_id
            AND c.date = m.date AND c.provider = %(provider)s
      )
"""

_UPSERT_DIGESTS = """
    INSERT INTO cost_data_days
        (tenant_id, cloud_account_id, date, row_count, content_digest, loaded_at, run_id)
    SELECT %(tenant_id)s, %(cloud_account_id)s::uuid, day, row_count, digest, now(), %(run_id)s
    FROM unnest(%(days)s::date[], %(row_counts)s::int[], %(digests)s::text[])
        AS changed(day, row_count, digest)
    ON CONFLICT (tenant_id, cloud_account_id, date) DO UPDATE
        SET row_count = EXCLUDED.row_count, content_digest = EXCLUDED.content_digest,
            loaded_at = EXCLUDED.loaded_at, run_id = EXCLUDED.run_id
"""

_CREATE_STAGING = f"""
    CREATE TEMP TABLE {_STAGING} ON COMMIT DROP AS
    SELECT {", ".join(COST_COLUMNS)} FROM cost_data WITH NO DATA
"""

_KEY_MATCH = " AND ".join(f"s.{c} = c.{c}" for c in COST_KEY_COLUMNS)
_VALUES_MATCH = " AND ".join(f"s.{c} IS NOT DISTINCT FROM c.{c}" for c in COST_VALUE_COLUMNS)

_DIFF = "cost_data_diff"

# Every key of the days that is new, changed or gone: the old key (NULL when new) beside the
# new row (NULL when gone). Unchanged rows drop out here and are never written.
_CREATE_DIFF = f"""
    CREATE TEMP TABLE {_DIFF} ON COMMIT DROP AS
    SELECT c.ctid AS old_ctid, c.service AS old_service,
           {", ".join(f"s.{col}" for col in COST_COLUMNS)}
    FROM (SELECT ctid, {", ".join(COST_COLUMNS)} FROM cost_data WHERE {_DAYS_FILTER}) AS c
    FULL JOIN {_STAGING} AS s ON {_KEY_MATCH}
    WHERE c.service IS NULL OR s.service IS NULL OR NOT ({_VALUES_MATCH})
"""

_COUNT_DIFF = f"""
    SELECT count(*) FILTER (WHERE old_service IS NULL),
           count(*) FILTER (WHERE old_service IS NOT NULL AND service IS NOT NULL),
           count(*) FILTER (WHERE service IS NULL)
    FROM {_DIFF}
"""

# By tuple id (a TID scan of an array): a fetch per changed row, never a scan of the window or
# of the table. The advisory lock keeps other loads off these rows; a row changed by anything
# else since the diff no longer has this ctid, is not deleted, and the insert below then fails
# on the key, so the whole load rolls back rather than losing that change. (No account filter
# here: the planner would scan the account's rows by index instead of fetching by tuple id;
# the tuple ids come from this window's rows above.)
_DELETE_DIFF = f"""
    DELETE FROM cost_data
    WHERE ctid = ANY(ARRAY(SELECT old_ctid FROM {_DIFF} WHERE old_ctid IS NOT NULL))
"""

_INSERT_ALL = f"""
    INSERT INTO cost_data ({", ".join(COST_COLUMNS)}, run_id)
    SELECT {", ".join(COST_COLUMNS)}, %(run_id)s FROM {_STAGING}
"""

_INSERT_DIFF = f"""
    INSERT INTO cost_data ({", ".join(COST_COLUMNS)}, run_id)
    SELECT {", ".join(COST_COLUMNS)}, %(run_id)s FROM {_DIFF} WHERE service IS NOT NULL
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
