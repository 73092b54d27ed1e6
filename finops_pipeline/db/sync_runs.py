"""Per-account outcomes of each run, in ``account_sync_runs``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class AccountRunOutcome:
    """How one account fared in one run."""

    cloud_account_id: str
    tenant_id: str
    run_id: str
    status: str  # "success" or "failed"
    rows_written: int = 0
    rows_in_window: int = 0
    paid_requests: int = 0
    range_start: dt.date | None = None
    range_end: dt.date | None = None
    error: str | None = None


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
                    o.status,
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
