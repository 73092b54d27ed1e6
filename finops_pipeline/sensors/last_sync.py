"""Run-status sensors that fold finished ``cost_data`` runs into ``cloud_accounts.last_sync_*``."""

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.finished_runs import record_run_last_sync

_CONFIG = FinopsConfig.from_env()


@dg.run_status_sensor(
    name="last_sync_success_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    minimum_interval_seconds=_CONFIG.sensor_interval_seconds,
    default_status=_CONFIG.sensor_default_status(),
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
    minimum_interval_seconds=_CONFIG.sensor_interval_seconds,
    default_status=_CONFIG.sensor_default_status(),
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
