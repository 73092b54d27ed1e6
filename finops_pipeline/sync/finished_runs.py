"""What a finished ``cost_data`` run changes in ``cloud_accounts.last_sync_*``.

The daemon's run-status sensors call this for the runs it sees; ``finops sync`` calls it for
its in-process runs, which no sensor sees.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from finops_pipeline.db.sync_state import apply_last_sync, outcomes_for_run
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.outcomes import fold_run_outcomes
from finops_pipeline.sync.run_tags import run_account_ranges

COST_DATA_STEP = "cost_data"


def _runs_cost_data(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    if run.execution_plan_snapshot_id is None:
        return False
    snapshot = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return any(step.key == COST_DATA_STEP for step in snapshot.steps)


def _finished_at(instance: dg.DagsterInstance, run_id: str) -> dt.datetime:
    record = instance.get_run_record_by_id(run_id)
    if record is not None and record.end_time is not None:
        return dt.datetime.fromtimestamp(record.end_time, tz=dt.UTC)
    return dt.datetime.now(dt.UTC)


def record_run_last_sync(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    postgres: PostgresResource,
    *,
    succeeded: bool,
    error: str | None,
) -> int:
    """Fold one finished run into ``last_sync_*``; returns how many accounts changed."""
    with postgres.connection() as connection:
        outcomes = outcomes_for_run(connection, run.run_id)
        if not outcomes and not _runs_cost_data(instance, run):
            return 0
        updates = fold_run_outcomes(
            run_id=run.run_id,
            run_succeeded=succeeded,
            finished_at=_finished_at(instance, run.run_id),
            outcomes=outcomes,
            run_ranges=run_account_ranges(instance, run),
            run_error=error,
        )
        return apply_last_sync(connection, updates)
