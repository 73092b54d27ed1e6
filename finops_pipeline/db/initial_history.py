"""Which accounts still need their initial history, decided from the database alone.

``cloud_accounts.initial_history_requested_at`` is set, in the same transaction that decides
it, when the account sensor requests an account's history or finds it loaded already. A
Dagster instance's run keys are no substitute: ``dagster dev`` without ``DAGSTER_HOME`` starts
a fresh temporary instance each time, and an account first loaded by ``finops sync`` already
has its partition, so "new partition" never meant "needs history".

What counts as loaded is what ``account_sync_runs`` holds: the date ranges of the account's
successful outcomes. They record the days asked for and answered, including days without any
cost (which leave no ``cost_data`` rows) and windows Cost Explorer had no data for yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import uncovered_ranges


@dataclass(frozen=True)
class AccountStates:
    """Active account ids, and those of them whose history was never requested."""

    active: set[str]
    awaiting_history: list[str]


def active_account_states(connection: psycopg.Connection) -> AccountStates:
    """Read the active accounts and their history flag in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text, initial_history_requested_at IS NULL FROM cloud_accounts "
            "WHERE status = 'active'"
        )
        rows = cursor.fetchall()
    return AccountStates(
        active={account_id for account_id, _ in rows},
        awaiting_history=sorted(account_id for account_id, awaiting in rows if awaiting),
    )


def claim_initial_history(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    window: DateRange,
    *,
    now: dt.datetime | None = None,
) -> dict[str, list[DateRange]]:
    """Mark accounts' history as requested and return the days each still needs.

    One transaction: only accounts still active and unmarked are claimed (``RETURNING`` says
    which), so two evaluations racing on one database, or a tick evaluated twice, request each
    account's history once.

    Args:
        connection: An autocommit connection.
        account_ids: Accounts the caller saw unmarked.
        window: The initial history window (``initial_history_window``).
        now: The time to record; the database's clock when None.

    Returns:
        For every claimed account, the parts of ``window`` its successful outcomes do not
        cover; an empty list means the history is loaded already and nothing is requested.
    """
    if not account_ids:
        return {}
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE cloud_accounts SET initial_history_requested_at = coalesce(%s, now())
            WHERE id = ANY(%s::uuid[]) AND status = 'active'
              AND initial_history_requested_at IS NULL
            RETURNING id::text
            """,
            (now, list(account_ids)),
        )
        claimed = sorted(row[0] for row in cursor.fetchall())
        covered: dict[str, list[DateRange]] = {account_id: [] for account_id in claimed}
        if claimed:
            cursor.execute(
                """
                SELECT cloud_account_id::text, range_start, range_end FROM account_sync_runs
                WHERE cloud_account_id = ANY(%s::uuid[]) AND status = 'success'
                  AND range_start <= %s AND range_end >= %s
                """,
                (claimed, window.end, window.start),
            )
            for account_id, start, end in cursor.fetchall():
                covered[account_id].append(DateRange(start, end))
    return {account_id: uncovered_ranges(window, ranges) for account_id, ranges in covered.items()}
