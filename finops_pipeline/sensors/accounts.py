"""The account sensor: dynamic partitions follow ``cloud_accounts``; accounts get their history."""

import datetime as dt

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME, COST_DATA_JOB_NAME
from finops_pipeline.db.initial_history import active_account_states, claim_initial_history
from finops_pipeline.partitions import cloud_account_partitions
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.account_partitions import plan_partition_changes
from finops_pipeline.sync.run_tags import SYNC_INITIAL, account_range_tags, initial_history_run_key
from finops_pipeline.sync.windows import SyncPolicy, initial_history_window

_CONFIG = FinopsConfig.from_env()


@dg.sensor(
    name="cloud_accounts_sensor",
    job_name=COST_DATA_JOB_NAME,
    minimum_interval_seconds=_CONFIG.sensor_interval_seconds,
    default_status=_CONFIG.sensor_default_status(),
    description=(
        "Adds active cloud_accounts rows to the account partitions and removes disabled or "
        "deleted ones. Each active account whose history was never requested gets range runs "
        "over the days of its daily history not loaded yet, once (recorded in the database)."
    ),
)
def cloud_accounts_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    """Diff active account ids (one query) against the dynamic partitions (one read)."""
    today = dt.datetime.now(dt.UTC).date()
    window = initial_history_window(today, SyncPolicy.from_env())
    with postgres.connection() as connection:
        states = active_account_states(connection)
        # Decided and recorded here, in this tick: a temporary `dagster dev` instance forgets
        # its run keys on restart, and `finops sync` adds partitions the sensor never sees new.
        history = (
            claim_initial_history(connection, states.awaiting_history, window)
            if window is not None
            else {}
        )
    existing = context.instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
    changes = plan_partition_changes(states.active, existing)
    if changes.empty and not history:
        return dg.SensorResult(skip_reason=f"{len(existing)} account partitions, all current")

    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if changes.added:
        requests.append(cloud_account_partitions.build_add_request(changes.added))
    if changes.deleted:
        requests.append(cloud_account_partitions.build_delete_request(changes.deleted))

    # The daemon adds the partitions before it submits the runs of the same tick.
    run_requests = [
        dg.RunRequest(
            run_key=initial_history_run_key(account_id, missing),
            job_name=COST_DATA_JOB_NAME,
            tags=account_range_tags(account_id, missing, SYNC_INITIAL),
        )
        for account_id, gaps in sorted(history.items())
        for missing in gaps
    ]
    context.log.info(
        "Accounts: %d added, %d removed; initial history: %d runs requested, %d accounts "
        "already loaded",
        len(changes.added),
        len(changes.deleted),
        len(run_requests),
        sum(1 for gaps in history.values() if not gaps),
    )
    return dg.SensorResult(run_requests=run_requests, dynamic_partitions_requests=requests)
