"""The insights' per-account schedules: the weekly refresh of savings recommendations and the
daily read of the providers' own anomalies, each one run per active account partition."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.sync_state import schedule_accounts
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.run_tags import ACCOUNT_TAG

#: The job the weekly schedule targets (defined in ``finops_pipeline.definitions``).
RECOMMENDATIONS_JOB_NAME = "cost_recommendations_job"
#: Mondays 05:00 UTC: providers regenerate recommendations about daily from the last 14-60
#: days of usage, so a weekly read sees every change that matters at a quarter of the cost.
WEEKLY_CRON = "0 5 * * 1"


def _one_run_per_account(
    postgres: PostgresResource,
    instance: dg.DagsterInstance,
    job_name: str,
    run_key: Callable[[str], str],
) -> list[dg.RunRequest]:
    """One run request per active account that already has its partition."""
    with postgres.connection() as connection:
        accounts = schedule_accounts(connection)
    known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
    return [
        dg.RunRequest(
            run_key=run_key(account.account_id),
            job_name=job_name,
            partition_key=account.account_id,
            # The same per-account tag as cost_data runs: dagster.yaml's limit of one run
            # per account keeps an account's paid requests from overlapping.
            tags={ACCOUNT_TAG: account.account_id},
        )
        for account in accounts
        if account.account_id in known
    ]


def weekly_refresh_requests(
    week_of: dt.date, postgres: PostgresResource, instance: dg.DagsterInstance
) -> list[dg.RunRequest]:
    """One run request per active account that already has its partition."""
    year, week, _ = week_of.isocalendar()
    # Keyed by ISO week: a re-evaluated tick launches nothing new.
    return _one_run_per_account(
        postgres,
        instance,
        RECOMMENDATIONS_JOB_NAME,
        lambda account_id: f"recommendations:{account_id}:{year}-W{week:02d}",
    )


@dg.schedule(
    name="weekly_recommendations_refresh",
    job_name=RECOMMENDATIONS_JOB_NAME,
    cron_schedule=WEEKLY_CRON,
    execution_timezone="UTC",
    default_status=FinopsConfig.from_env().schedule_default_status(),
    description=(
        "Every Monday, one cost_recommendations run per active account: its providers' "
        "current savings recommendations replace the stored set (2 paid AWS requests per "
        "account for most accounts)."
    ),
)
def weekly_recommendations_refresh(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.SkipReason | list[dg.RunRequest]:
    scheduled = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    requests = weekly_refresh_requests(
        scheduled.astimezone(dt.UTC).date(), postgres, context.instance
    )
    if not requests:
        return dg.SkipReason("No active accounts with partitions yet")
    return requests


#: The job the provider-anomalies schedule targets (defined in ``finops_pipeline.definitions``).
PROVIDER_ANOMALIES_JOB_NAME = "provider_cost_anomalies_job"


def daily_provider_anomaly_requests(
    day: dt.date, postgres: PostgresResource, instance: dg.DagsterInstance
) -> list[dg.RunRequest]:
    """One run request per active account that already has its partition."""
    return _one_run_per_account(
        postgres,
        instance,
        PROVIDER_ANOMALIES_JOB_NAME,
        lambda account_id: f"provider-anomalies:{account_id}:{day.isoformat()}",
    )


@dg.schedule(
    name="daily_provider_anomalies",
    job_name=PROVIDER_ANOMALIES_JOB_NAME,
    cron_schedule="0 7 * * *",
    execution_timezone="UTC",
    # Off until turned on: every GetAnomalies request is billed, and many organisations have
    # no anomaly monitor at all.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Every day, one provider_cost_anomalies run per active account: AWS Cost Anomaly "
        "Detection's anomalies of the last 90 days (1 paid request per account for most). Off "
        "by default."
    ),
)
def daily_provider_anomalies(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource
) -> dg.SkipReason | list[dg.RunRequest]:
    scheduled = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    requests = daily_provider_anomaly_requests(
        scheduled.astimezone(dt.UTC).date(), postgres, context.instance
    )
    if not requests:
        return dg.SkipReason("No active accounts with partitions yet")
    return requests
