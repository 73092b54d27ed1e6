"""The daily, restatement-aware schedule: one range run per active account, over its
provider's window (``sync.windows.scheduled_window``)."""

import datetime as dt

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME, COST_DATA_JOB_NAME
from finops_pipeline.db.sync_state import accounts_with_estimated_rows, schedule_accounts
from finops_pipeline.db.watermarks import moved_days_by_account
from finops_pipeline.providers.gcp.schedule import window_with_moved_days
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.run_tags import SYNC_DAILY, account_range_tags, daily_run_key
from finops_pipeline.sync.windows import (
    SyncPolicy,
    first_of_month,
    previous_month_state_needed,
    scheduled_window,
)


def daily_cost_sync_requests(
    today: dt.date,
    policy: SyncPolicy,
    postgres: PostgresResource,
    instance: dg.DagsterInstance,
) -> list[dg.RunRequest]:
    """One run request per active account that already has its partition."""
    with postgres.connection() as connection:
        accounts = schedule_accounts(connection)
        not_final: set[str] = set()
        if any(previous_month_state_needed(today, policy, a.provider) for a in accounts):
            not_final = accounts_with_estimated_rows(
                connection, first_of_month(today, 1), first_of_month(today)
            )
        # Days a source restated since they were loaded (GCP export_time watermarks).
        moved = moved_days_by_account(connection)
    # An account the sensor has not added yet has no partitions; its initial backfill covers
    # these days anyway.
    known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
    requests = []
    for account in accounts:
        if account.account_id not in known:
            continue
        planned = scheduled_window(
            today,
            policy,
            last_success_at=account.last_success_at,
            previous_month_final=account.account_id not in not_final,
            provider=account.provider,
        )
        if account.account_id in moved:
            planned = window_with_moved_days(today, policy, planned, moved[account.account_id])
        requests.append(
            dg.RunRequest(
                run_key=daily_run_key(account.account_id, planned.window),
                job_name=COST_DATA_JOB_NAME,
                tags={
                    **account_range_tags(account.account_id, planned.window, SYNC_DAILY),
                    "finops/window_reason": "; ".join(planned.reasons)[:200],
                },
            )
        )
    return requests


@dg.schedule(
    name="daily_cost_sync",
    job_name=COST_DATA_JOB_NAME,
    cron_schedule=f"0 {SyncPolicy.from_env().schedule_hour_utc} * * *",
    execution_timezone="UTC",
    default_status=FinopsConfig.from_env().schedule_default_status(),
    description=(
        "Every day, one range run per active account over its provider's restatement window "
        "ending yesterday: for AWS a few trailing days, and in the first days of a month the "
        "previous month until it is final; for Azure the current month, and the previous one "
        "until it closes. Stretched back after missed days."
    ),
)
def daily_cost_sync(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.SkipReason | list[dg.RunRequest]:
    """The tick's day is its scheduled time in UTC, so a late tick reads the right days."""
    scheduled = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    today = scheduled.astimezone(dt.UTC).date()
    requests = daily_cost_sync_requests(today, SyncPolicy.from_env(), postgres, context.instance)
    if not requests:
        return dg.SkipReason("No active accounts with partitions yet")
    return requests
