"""The daily, restatement-aware schedule: range runs of up to N accounts sharing a provider and
its window (``sync.windows.scheduled_window``, grouped by ``sync.run_groups``)."""

import datetime as dt

import dagster as dg

from finops_pipeline.config import DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN, FinopsConfig
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME, COST_DATA_JOB_NAME
from finops_pipeline.db.sync_state import accounts_with_estimated_rows, schedule_accounts
from finops_pipeline.db.watermarks import moved_days_by_account
from finops_pipeline.providers import provider_spec
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.run_groups import PlannedWindow, group_planned_windows
from finops_pipeline.sync.run_tags import SYNC_DAILY, daily_group_run_key, group_range_tags
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
    *,
    accounts_per_run: int = DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN,
) -> list[dg.RunRequest]:
    """Range runs of up to ``accounts_per_run`` active accounts with partitions.

    Accounts are grouped by provider and window, in contiguous stretches of the partitions'
    order (see :mod:`finops_pipeline.sync.run_groups`).
    """
    with postgres.connection() as connection:
        accounts = schedule_accounts(connection)
        not_final: set[str] = set()
        if any(previous_month_state_needed(today, policy, a.provider) for a in accounts):
            not_final = accounts_with_estimated_rows(
                connection, first_of_month(today, 1), first_of_month(today)
            )
        # Days a source restated since they were loaded (the sources with watermarks: GCP).
        moved = moved_days_by_account(connection)
    # An account the sensor has not added yet has no partitions; its initial backfill covers
    # these days anyway.
    partition_order = instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
    known = set(partition_order)
    planned = []
    for account in accounts:
        if account.account_id not in known:
            continue
        window = scheduled_window(
            today,
            policy,
            last_success_at=account.last_success_at,
            previous_month_final=account.account_id not in not_final,
            provider=account.provider,
        )
        if account.account_id in moved:
            widen = provider_spec(account.provider).widen_scheduled_window
            if widen is not None:
                window = widen(today, policy, window, moved[account.account_id])
        planned.append(
            PlannedWindow(account.account_id, account.provider, window.window, window.reasons)
        )
    return [
        dg.RunRequest(
            run_key=daily_group_run_key(group.first, group.last, group.window),
            job_name=COST_DATA_JOB_NAME,
            tags={
                **group_range_tags(
                    group.first, group.last, len(group.account_ids), group.window, SYNC_DAILY
                ),
                "finops/window_reason": "; ".join(group.reasons)[:200],
            },
        )
        for group in group_planned_windows(planned, partition_order, accounts_per_run)
    ]


@dg.schedule(
    name="daily_cost_sync",
    job_name=COST_DATA_JOB_NAME,
    cron_schedule=f"0 {SyncPolicy.from_env().schedule_hour_utc} * * *",
    execution_timezone="UTC",
    default_status=FinopsConfig.from_env().schedule_default_status(),
    description=(
        "Every day, range runs of up to FINOPS_SCHEDULE_ACCOUNTS_PER_RUN active accounts "
        "sharing a provider and window, over the provider's restatement window ending "
        "yesterday: for AWS a few trailing days, and in the first days of a month the "
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
    requests = daily_cost_sync_requests(
        today,
        SyncPolicy.from_env(),
        postgres,
        context.instance,
        accounts_per_run=FinopsConfig.from_env().schedule_accounts_per_run,
    )
    if not requests:
        return dg.SkipReason("No active accounts with partitions yet")
    return requests
