"""The account sensor: dynamic partitions follow ``cloud_accounts``; new accounts get history."""

import datetime as dt
import os

import dagster as dg

from finops_pipeline.account_partitions import plan_partition_changes
from finops_pipeline.db.accounts import list_active_account_ids
from finops_pipeline.partitions import cloud_account_partitions
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.run_tags import SYNC_INITIAL, account_range_tags, initial_history_run_key
from finops_pipeline.sensors.settings import (
    COST_DATA_JOB_NAME,
    sensor_default_status,
    sensor_interval_seconds,
)
from finops_pipeline.settings import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.sync_windows import SyncPolicy, initial_history_window


@dg.sensor(
    name="cloud_accounts_sensor",
    job_name=COST_DATA_JOB_NAME,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=sensor_default_status(),
    description=(
        "Adds active cloud_accounts rows to the account partitions and removes disabled or "
        "deleted ones. Each new account gets one range run over its daily history."
    ),
)
def cloud_accounts_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    """Diff active account ids (one query) against the dynamic partitions (one read)."""
    with postgres.connection() as connection:
        active = list_active_account_ids(connection)
    existing = context.instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
    changes = plan_partition_changes(active, existing)
    if changes.empty:
        return dg.SensorResult(skip_reason=f"{len(existing)} account partitions, all current")

    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if changes.added:
        requests.append(cloud_account_partitions.build_add_request(changes.added))
    if changes.deleted:
        requests.append(cloud_account_partitions.build_delete_request(changes.deleted))

    today = dt.datetime.now(dt.UTC).date()
    window = initial_history_window(today, SyncPolicy.from_env(os.environ))
    # The daemon adds the partitions before it submits the runs of the same tick; the run key
    # makes the initial backfill once per account, even if the account is removed and re-added.
    run_requests = (
        [
            dg.RunRequest(
                run_key=initial_history_run_key(account_id),
                job_name=COST_DATA_JOB_NAME,
                tags=account_range_tags(account_id, window, SYNC_INITIAL),
            )
            for account_id in changes.added
        ]
        if window is not None
        else []
    )
    context.log.info(
        "Accounts: %d added, %d removed, %d initial backfills requested",
        len(changes.added),
        len(changes.deleted),
        len(run_requests),
    )
    return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests)
