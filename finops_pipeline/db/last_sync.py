"""Writing ``cloud_accounts.last_sync_*`` and reading what the daily schedule needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from finops_pipeline.sync.outcomes import STATUS_SUCCESS, LastSyncUpdate

# A run processed again (a failure sensor may fire twice) or late (after a newer run) must not
# change anything: the attempt-time guard drops older runs, the distinctness guard identical ones.
_SUCCESS_SQL = """
UPDATE cloud_accounts SET
    last_sync_status = 'success', last_sync_error = NULL, last_sync_run_id = %(run_id)s,
    last_sync_attempt_at = %(finished_at)s, last_sync_at = %(finished_at)s,
    last_sync_rows = %(rows_in_window)s, last_sync_range_start = %(range_start)s,
    last_sync_range_end = %(range_end)s
WHERE id = %(account_id)s
  AND (last_sync_attempt_at IS NULL OR last_sync_attempt_at <= %(finished_at)s)
  AND (last_sync_run_id IS DISTINCT FROM %(run_id)s
       OR last_sync_status IS DISTINCT FROM 'success')
"""

_FAILED_SQL = """
UPDATE cloud_accounts SET
    last_sync_status = 'failed', last_sync_error = %(error)s, last_sync_run_id = %(run_id)s,
    last_sync_attempt_at = %(finished_at)s
WHERE id = %(account_id)s
  AND (last_sync_attempt_at IS NULL OR last_sync_attempt_at <= %(finished_at)s)
  AND (last_sync_run_id IS DISTINCT FROM %(run_id)s
       OR last_sync_status IS DISTINCT FROM 'failed')
"""


def apply_last_sync(connection: psycopg.Connection, updates: Sequence[LastSyncUpdate]) -> int:
    """Write the updates in one transaction; returns how many accounts changed.

    Ids of accounts deleted since the run match no row and are ignored.
    """
    changed = 0
    with connection.transaction(), connection.cursor() as cursor:
        for update in updates:
            params = {
                "account_id": update.account_id,
                "run_id": update.run_id,
                "finished_at": update.finished_at,
                "rows_in_window": update.rows_in_window,
                "range_start": update.range_start,
                "range_end": update.range_end,
                "error": update.error,
            }
            cursor.execute(_SUCCESS_SQL if update.status == STATUS_SUCCESS else _FAILED_SQL, params)
            changed += cursor.rowcount
    return changed


@dataclass(frozen=True)
class ScheduleAccount:
    """An active account as the daily schedule sees it."""

    account_id: str
    last_success_at: dt.datetime | None


def schedule_accounts(connection: psycopg.Connection) -> list[ScheduleAccount]:
    """Active accounts with their last successful sync, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, last_sync_at FROM cloud_accounts WHERE status = 'active' ORDER BY id"
        )
        return [ScheduleAccount(row[0], row[1]) for row in cursor.fetchall()]


def accounts_with_estimated_rows(
    connection: psycopg.Connection, start: dt.date, end_exclusive: dt.date
) -> set[str]:
    """Accounts that still have estimated (not final) cost rows in ``[start, end_exclusive)``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT cloud_account_id::text FROM cost_data "
            "WHERE is_estimated AND date >= %s AND date < %s",
            (start, end_exclusive),
        )
        return {row[0] for row in cursor.fetchall()}
