"""Run-status sensors that fold finished ``cost_data`` runs into ``cloud_accounts.last_sync_*``."""

import datetime as dt

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from finops_pipeline.db.last_sync import apply_last_sync
from finops_pipeline.db.sync_runs import outcomes_for_run
from finops_pipeline.partitions import cloud_account_partitions
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sensors.settings import sensor_default_status, sensor_interval_seconds
from finops_pipeline.sync.outcomes import fold_run_outcomes
from finops_pipeline.sync.ranges import DateRange, split_partition_key

COST_DATA_STEP = "cost_data"


def run_account_ranges(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, DateRange]:
    """The accounts and days a run's partition tags cover.

    Range and backfill runs carry only ``dagster/asset_partition_range_start``/``_end``. A
    multi-partition range is the product of its dimensions' ranges, so the account dimension is
    expanded against the instance's dynamic partitions and every account gets the date span;
    this stays linear in accounts, where expanding account × date keys would not.
    """
    tags = run.tags
    start_key = tags.get(ASSET_PARTITION_RANGE_START_TAG)
    end_key = tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start_key and end_key:
        try:
            first_account, start_day = split_partition_key(start_key)
            last_account, end_day = split_partition_key(end_key)
        except ValueError:
            return {}
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            try:
                accounts = cloud_account_partitions.get_partition_keys_in_range(
                    dg.PartitionKeyRange(first_account, last_account)
                )
            except dg.DagsterInvalidInvocationError:
                # An end account was removed since the run: only the ends are known for sure.
                accounts = sorted({first_account, last_account})
        return {account: DateRange(start_day, end_day) for account in accounts}
    key = tags.get(PARTITION_NAME_TAG)
    if key:
        try:
            account, day = split_partition_key(key)
        except ValueError:
            return {}
        return {account: DateRange(day, day)}
    return {}


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


@dg.run_status_sensor(
    name="last_sync_success_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=sensor_default_status(),
    description="Records last_sync_at, rows, range and run id for each account of a "
    "successful cost_data run.",
)
def last_sync_success_sensor(
    context: dg.RunStatusSensorContext, postgres: PostgresResource
) -> None:
    """Success: every account the run recorded gets status ``success``."""
    changed = record_run_last_sync(
        context.instance, context.dagster_run, postgres, succeeded=True, error=None
    )
    context.log.info(
        "Run %s: last sync updated for %d accounts", context.dagster_run.run_id, changed
    )


@dg.run_failure_sensor(
    name="last_sync_failure_sensor",
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=sensor_default_status(),
    description="Records status 'failed' and a sanitised error for each account of a failed "
    "cost_data run, keeping the last successful sync time.",
)
def last_sync_failure_sensor(
    context: dg.RunFailureSensorContext, postgres: PostgresResource
) -> None:
    """Failure: accounts the run loaded still count as synced; the others get the error.

    A failure sensor may see the same run twice; the writes are idempotent per (account, run).
    """
    error = context.failure_event.message
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            error = data.user_failure_data.description
        elif data.error is not None:
            error = f"{data.error.cls_name}: {data.error.message.strip()}"
        break
    changed = record_run_last_sync(
        context.instance, context.dagster_run, postgres, succeeded=False, error=error
    )
    context.log.info(
        "Run %s: last sync updated for %d accounts", context.dagster_run.run_id, changed
    )
