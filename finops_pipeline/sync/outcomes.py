"""How an account fared in a sync, and how a run's outcomes fold into ``last_sync_*``: pure logic.

The statuses are stored as their string values in ``account_sync_runs.status`` and
``cloud_accounts.last_sync_status``.

The columns split in two:

* ``last_sync_status``, ``last_sync_error``, ``last_sync_run_id`` and ``last_sync_attempt_at``
  describe the latest run that included the account, successful or not;
* ``last_sync_at``, ``last_sync_rows`` and ``last_sync_range_start``/``_end`` describe the latest
  **successful** one, so a failure never hides when the account last synced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from finops_pipeline.security.redaction import GLOBAL_REDACTOR
from finops_pipeline.sync.ranges import DateRange


class SyncStatus(StrEnum):
    """An account's sync status, as stored."""

    SUCCESS = "success"
    FAILED = "failed"


# Enough for the error type and the provider's message; a stack trace is for the event log.
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class AccountRunOutcome:
    """How one account fared in one run (a row of ``account_sync_runs``)."""

    cloud_account_id: str
    tenant_id: str
    run_id: str
    status: SyncStatus
    rows_written: int = 0
    rows_in_window: int = 0
    paid_requests: int = 0
    range_start: dt.date | None = None
    range_end: dt.date | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        # Rows read back from the database carry the plain string.
        object.__setattr__(self, "status", SyncStatus(self.status))


@dataclass(frozen=True)
class LastSyncUpdate:
    """What one account's ``last_sync_*`` columns become after one run."""

    account_id: str
    run_id: str
    status: SyncStatus
    finished_at: dt.datetime
    #: What the synced range holds now (rows kept for lack of new data included).
    rows_in_window: int | None = None
    range_start: dt.date | None = None
    range_end: dt.date | None = None
    error: str | None = None


def sanitise_error(message: str | None) -> str:
    """An error safe to store and show: registered secrets masked, whitespace tidied, bounded."""
    text = GLOBAL_REDACTOR.redact((message or "").strip()) or "the run failed; see its event log"
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return text


def fold_run_outcomes(
    *,
    run_id: str,
    run_succeeded: bool,
    finished_at: dt.datetime,
    outcomes: Sequence[AccountRunOutcome],
    run_ranges: Mapping[str, DateRange],
    run_error: str | None = None,
) -> list[LastSyncUpdate]:
    """One update per account the run covered.

    Args:
        run_id: The Dagster run.
        run_succeeded: Whether the run as a whole succeeded.
        finished_at: When the run ended; it is both the attempt time and, for a success, the
            sync time, so processing the run twice writes the same values.
        outcomes: What the run recorded per account in ``account_sync_runs``.
        run_ranges: Each account's dates according to the run's partition tags; used for the
            accounts the run never recorded (it failed first, or predates the table).
        run_error: The run's failure message, for accounts without an outcome of their own.
    """
    by_account = {outcome.cloud_account_id: outcome for outcome in outcomes}
    if run_succeeded and by_account:
        # Accounts the run skipped (disabled mid-run) have no outcome and keep their state.
        accounts = sorted(by_account)
    else:
        accounts = sorted(set(by_account) | set(run_ranges))
    updates = []
    for account_id in accounts:
        outcome = by_account.get(account_id)
        tag_range = run_ranges.get(account_id)
        if outcome is not None and outcome.status == SyncStatus.SUCCESS:
            updates.append(
                LastSyncUpdate(
                    account_id=account_id,
                    run_id=run_id,
                    status=SyncStatus.SUCCESS,
                    finished_at=finished_at,
                    rows_in_window=outcome.rows_in_window,
                    range_start=outcome.range_start or (tag_range.start if tag_range else None),
                    range_end=outcome.range_end or (tag_range.end if tag_range else None),
                )
            )
        elif outcome is None and run_succeeded:
            updates.append(
                LastSyncUpdate(
                    account_id=account_id,
                    run_id=run_id,
                    status=SyncStatus.SUCCESS,
                    finished_at=finished_at,
                    range_start=tag_range.start if tag_range else None,
                    range_end=tag_range.end if tag_range else None,
                )
            )
        else:
            error = outcome.error if outcome is not None else run_error
            updates.append(
                LastSyncUpdate(
                    account_id=account_id,
                    run_id=run_id,
                    status=SyncStatus.FAILED,
                    finished_at=finished_at,
                    error=sanitise_error(error),
                )
            )
    return updates
