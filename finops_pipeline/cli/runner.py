"""Running ``cost_data`` in-process for accounts and days, as range runs, retrying the
accounts that failed transiently."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg

from finops_pipeline.assets.cost_data import RETRYABLE_ACCOUNTS_KEY, cost_data_without_step_retries
from finops_pipeline.assets.cost_data_checks import COST_DATA_CHECKS
from finops_pipeline.cli.abandoned_runs import AbandonedRun, fail_abandoned_runs, process_tags
from finops_pipeline.cli.instance_config import write_instance_config
from finops_pipeline.config import finops_home
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    SerializableErrorInfo,
    use_batched_run_bookkeeping,
)
from finops_pipeline.db.sync_state import outcomes_for_run
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.finished_runs import record_run_last_sync
from finops_pipeline.sync.outcomes import SyncStatus, sanitise_error
from finops_pipeline.sync.ranges import account_date_key
from finops_pipeline.sync.retries import SyncRetrySettings
from finops_pipeline.sync.windows import daily_history_start

#: Which attempt of a `finops sync` a run is: 1, then 2 for the first retry, ...
ATTEMPT_TAG = "finops/attempt"

LOADED = "loaded"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass(frozen=True)
class AccountSyncResult:
    """How one account ended: loaded (in which attempt), failed (why), or skipped (disabled)."""

    account_id: str
    status: str
    attempt: int
    run_id: str
    rows_in_window: int = 0
    rows_written: int = 0
    paid_requests: int = 0
    error: str | None = None
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempt": self.attempt,
            "run_id": self.run_id,
            "rows_in_window": self.rows_in_window,
            "rows_written": self.rows_written,
            "paid_requests": self.paid_requests,
            "error": self.error,
        }


@dataclass(frozen=True)
class RetryNotice:
    """Sent before each retry's wait, so a command can say what it is waiting for."""

    retry: int
    max_retries: int
    wait_seconds: float
    failures: list[AccountSyncResult]


@dataclass
class SyncResult:
    """What a sync did over all its attempts; the CLI prints it."""

    success: bool
    run_id: str
    accounts: list[str]
    start: dt.date
    end: dt.date
    statistics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 1
    run_ids: list[str] = field(default_factory=list)
    account_results: dict[str, AccountSyncResult] = field(default_factory=dict)
    abandoned_runs: list[AbandonedRun] = field(default_factory=list)

    def accounts_with(self, status: str) -> list[AccountSyncResult]:
        return [r for r in self.account_results.values() if r.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "run_id": self.run_id,
            "run_ids": self.run_ids,
            "attempts": self.attempts,
            "accounts": self.accounts,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "statistics": self.statistics,
            "account_results": {
                account: result.as_dict() for account, result in self.account_results.items()
            },
            "error": self.error,
        }


def local_dagster_home(environ: Mapping[str, str] | None = None) -> Path:
    """``DAGSTER_HOME``, else ``FINOPS_HOME/dagster``, so CLI runs show in ``dagster dev``."""
    env = os.environ if environ is None else environ
    configured = env.get("DAGSTER_HOME", "").strip()
    home = Path(configured) if configured else finops_home(env) / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return home


def open_instance() -> dg.DagsterInstance:
    """The persistent local Dagster instance the CLI records its runs in."""
    home = local_dagster_home()
    write_instance_config(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def validate_window(start: dt.date, end: dt.date, today: dt.date | None = None) -> None:
    """Refuse windows Cost Explorer cannot serve; the error says which days are valid.

    Checked before anything is requested, so a bad window costs nothing.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    earliest = daily_history_start(today)
    if start < earliest:
        raise ValueError(
            f"--start {start} is older than Cost Explorer keeps daily data: it covers the "
            f"current month and the previous 13, so from {earliest} today"
        )
    if end >= today:
        raise ValueError(
            f"--end must be before today ({today}, UTC): today's costs are still partial"
        )


def account_blocks(requested: Sequence[str], partition_order: Sequence[str]) -> list[list[str]]:
    """Split accounts into runs whose accounts are adjacent in the instance's partition order.

    A multi-partition range spans every account between its two ends, in the order the dynamic
    partitions were added, so only an adjacent block can share one range run.
    """
    position = {account: index for index, account in enumerate(partition_order)}
    ordered = sorted(set(requested), key=lambda account: position[account])
    blocks: list[list[str]] = []
    for account in ordered:
        if blocks and position[account] == position[blocks[-1][-1]] + 1:
            blocks[-1].append(account)
        else:
            blocks.append([account])
    return blocks


def sync_accounts(
    account_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    retry: SyncRetrySettings | None = None,
    on_retry: Callable[[RetryNotice], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Materialise ``cost_data`` for every account and day in as few in-process range runs as
    the partition order allows (one, for one account). ``end`` is inclusive.

    Accounts that fail transiently (throttling, a lost connection) are retried in new runs,
    after ``retry``'s waits (``FINOPS_RETRY_MAX`` retries by default); ``on_retry`` hears of
    each retry before its wait. The result covers every attempt. Runs a killed ``finops``
    process left unfinished on this host are marked failed first.
    """
    retry = retry or SyncRetrySettings.from_env()
    # The runs are created here, in this process: one planned event per run, not per partition.
    use_batched_run_bookkeeping()
    summary = SyncResult(
        success=True, run_id="", accounts=sorted(set(account_ids)), start=start, end=end
    )
    postgres = _postgres_outside_runs(resources)
    try:
        summary.abandoned_runs = fail_abandoned_runs(instance)
        for abandoned in summary.abandoned_runs:
            run = instance.get_run_by_id(abandoned.run_id)
            if run is not None:
                record_run_last_sync(
                    instance, run, postgres, succeeded=False, error=abandoned.message
                )
        known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
        missing = [account for account in dict.fromkeys(account_ids) if account not in known]
        if missing:
            instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, missing)
        order = instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
        pending = list(dict.fromkeys(account_ids))
        attempt = 0
        while True:
            attempt += 1
            summary.attempts = attempt
            results: list[AccountSyncResult] = []
            for block in account_blocks(pending, order):
                results += _run_block(
                    block,
                    start,
                    end,
                    attempt=attempt,
                    instance=instance,
                    resources=resources,
                    postgres=postgres,
                    tags=tags,
                    run_config=run_config,
                    summary=summary,
                )
            summary.account_results.update({r.account_id: r for r in results})
            to_retry = [r for r in results if r.status == FAILED and r.retryable]
            if not to_retry or attempt > retry.max_retries:
                break
            wait = retry.wait_before(attempt)
            if on_retry is not None:
                on_retry(RetryNotice(attempt, retry.max_retries, wait, to_retry))
            sleep(wait)
            pending = [r.account_id for r in to_retry]
    finally:
        if postgres is not resources.get("postgres"):
            postgres.dispose()
    failed = summary.accounts_with(FAILED)
    summary.success = summary.success and not failed
    if failed:
        summary.error = "\n".join(f"{r.account_id}: {r.error}" for r in failed)
    summary.run_id = ",".join(summary.run_ids)
    return summary


def _run_block(
    block: list[str],
    start: dt.date,
    end: dt.date,
    *,
    attempt: int,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    postgres: PostgresResource,
    tags: Mapping[str, str] | None,
    run_config: Mapping[str, Any] | None,
    summary: SyncResult,
) -> list[AccountSyncResult]:
    """One range run over adjacent accounts; returns each account's result."""
    run_tags = {
        ASSET_PARTITION_RANGE_START_TAG: account_date_key(block[0], start),
        ASSET_PARTITION_RANGE_END_TAG: account_date_key(block[-1], end),
        ATTEMPT_TAG: str(attempt),
        **process_tags(),
        **(tags or {}),
    }
    result = dg.materialize(
        # The checks run after the load in the same run, as in cost_data_job.
        [cost_data_without_step_retries, *COST_DATA_CHECKS],
        instance=instance,
        resources=resources,
        tags=run_tags,
        run_config=dict(run_config) if run_config else None,
        raise_on_error=False,
    )
    summary.run_ids.append(result.run_id)
    statistics, error = _run_statistics(result)
    retryable = set(filter(None, str(statistics.pop(RETRYABLE_ACCOUNTS_KEY, "")).split(", ")))
    statistics.pop("failed_accounts", None)
    _accumulate(summary.statistics, statistics)
    # The daemon's run-status sensors never see in-process runs, so record last sync here.
    run = instance.get_run_by_id(result.run_id)
    if run is not None:
        record_run_last_sync(instance, run, postgres, succeeded=result.success, error=error)
    with postgres.connection() as connection:
        outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, result.run_id)}
    if not result.success and not outcomes:
        # The run failed before any account was tried: every account shares its error.
        summary.success = False
        return [
            AccountSyncResult(account, FAILED, attempt, result.run_id, error=sanitise_error(error))
            for account in block
        ]
    results = []
    for account in block:
        outcome = outcomes.get(account)
        if outcome is None:  # not active: the asset skipped it
            results.append(AccountSyncResult(account, SKIPPED, attempt, result.run_id))
        elif outcome.status == SyncStatus.SUCCESS:
            results.append(
                AccountSyncResult(
                    account,
                    LOADED,
                    attempt,
                    result.run_id,
                    rows_in_window=outcome.rows_in_window,
                    rows_written=outcome.rows_written,
                    paid_requests=outcome.paid_requests,
                )
            )
        else:
            results.append(
                AccountSyncResult(
                    account,
                    FAILED,
                    attempt,
                    result.run_id,
                    error=sanitise_error(outcome.error),
                    retryable=account in retryable,
                )
            )
    return results


def _postgres_outside_runs(resources: Mapping[str, object]) -> PostgresResource:
    """The run's Postgres resource, usable outside a run.

    A field bound to ``dg.EnvVar`` is only resolved inside runs; outside, a plain resource reads
    ``DATABASE_URL`` itself, which is the same database.
    """
    postgres = resources.get("postgres")
    if isinstance(postgres, PostgresResource) and not isinstance(postgres.database_url, dg.EnvVar):
        return postgres
    return PostgresResource()


def _run_statistics(result: dg.ExecuteInProcessResult) -> tuple[dict[str, Any], str | None]:
    statistics: dict[str, Any] = {}
    error = None
    materializations = result.asset_materializations_for_node("cost_data")
    if materializations:
        statistics = _plain_metadata(materializations[0].metadata)
    failure_events = [event for event in result.all_events if event.is_step_failure]
    if failure_events and failure_events[0].step_failure_data is not None:
        data = failure_events[0].step_failure_data
        if data.user_failure_data is not None:
            error = data.user_failure_data.description
            statistics = _plain_metadata(data.user_failure_data.metadata)
        elif data.error is not None:
            error = _root_cause(data.error)
    elif not result.success:
        error = "the run failed before the cost_data step; see the Dagster event log"
    return statistics, error


def _root_cause(error: SerializableErrorInfo) -> str:
    """The innermost error of a chain: Dagster's wrappers only say where it happened."""
    while error.cause is not None:
        error = error.cause
    return f"{error.cls_name}: {error.message.strip()}" if error.cls_name else error.message


def _accumulate(total: dict[str, Any], addition: Mapping[str, Any]) -> None:
    for key, value in addition.items():
        current = total.get(key)
        if key.startswith("total_unblended_cost_") and current is not None:
            total[key] = str(Decimal(current) + Decimal(value))
        elif (isinstance(value, int | float) and isinstance(current, int | float)) or (
            isinstance(value, list) and isinstance(current, list)
        ):
            total[key] = current + value
        else:
            total[key] = value


def _plain_metadata(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dg.TableMetadataValue):
            plain[key] = [dict(record.data) for record in value.records]
        else:
            plain[key.replace("dagster/", "")] = value.value
    return plain
