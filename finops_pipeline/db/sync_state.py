"""Sync state: each run's per-account outcomes, ``last_sync_*``, and the schedule's reads.

``account_sync_runs`` holds how each account fared in each run; ``cloud_accounts.last_sync_*``
the fold of those runs (see ``finops_pipeline.sync.outcomes``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from finops_pipeline.constants import PROVIDER_AWS
from finops_pipeline.sync.outcomes import AccountRunOutcome, LastSyncUpdate, SyncStatus


def record_outcomes(connection: psycopg.Connection, outcomes: list[AccountRunOutcome]) -> None:
    """Upsert outcomes; recording the same (account, run) again overwrites, never duplicates."""
    if not outcomes:
        return
    with connection.transaction(), connection.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO account_sync_runs (cloud_account_id, run_id, tenant_id, status,
                rows_written, rows_in_window, paid_requests, range_start, range_end, error)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (cloud_account_id, run_id) DO UPDATE SET
                status = EXCLUDED.status, rows_written = EXCLUDED.rows_written,
                rows_in_window = EXCLUDED.rows_in_window,
                paid_requests = EXCLUDED.paid_requests, range_start = EXCLUDED.range_start,
                range_end = EXCLUDED.range_end, error = EXCLUDED.error, recorded_at = now()
            """,
            [
                (
                    o.cloud_account_id,
                    o.run_id,
                    o.tenant_id,
                    o.status.value,
                    o.rows_written,
                    o.rows_in_window,
                    o.paid_requests,
                    o.range_start,
                    o.range_end,
                    o.error,
                )
                for o in outcomes
            ],
        )


def outcomes_for_run(connection: psycopg.Connection, run_id: str) -> list[AccountRunOutcome]:
    """Every account outcome a run recorded."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT cloud_account_id::text, tenant_id, run_id, status, rows_written,
                   rows_in_window, paid_requests, range_start, range_end, error
            FROM account_sync_runs WHERE run_id = %s ORDER BY cloud_account_id
            """,
            (run_id,),
        )
        return [AccountRunOutcome(*row) for row in cursor.fetchall()]


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
            cursor.execute(
                _SUCCESS_SQL if update.status == SyncStatus.SUCCESS else _FAILED_SQL, params
            )
            changed += cursor.rowcount
    return changed


@dataclass(frozen=True)
class ScheduleAccount:
    """An active account as the daily schedule sees it."""

    account_id: str
    last_success_at: dt.datetime | None
    provider: str = PROVIDER_AWS


def schedule_accounts(connection: psycopg.Connection) -> list[ScheduleAccount]:
    """Active accounts with their last successful sync, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, last_sync_at, provider FROM cloud_accounts "
            "WHERE status = 'active' ORDER BY id"
        )
        return [ScheduleAccount(row[0], row[1], row[2]) for row in cursor.fetchall()]


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
