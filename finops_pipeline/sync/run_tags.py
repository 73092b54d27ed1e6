"""Tags and run keys of the runs the sensors, the schedule and the CLI request, and reading
back which accounts and days a finished run covered."""

from __future__ import annotations

import dagster as dg

from finops_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from finops_pipeline.partitions import cloud_account_partitions
from finops_pipeline.sync.ranges import DateRange, account_date_key, split_partition_key

#: One value per account: ``dagster.yaml`` limits runs to one per unique value of this tag.
ACCOUNT_TAG = "finops/account"
#: Why a run was requested: ``initial-history`` or ``daily``.
SYNC_KIND_TAG = "finops/sync"
SYNC_INITIAL = "initial-history"
SYNC_DAILY = "daily"


def account_range_tags(account_id: str, window: DateRange, kind: str) -> dict[str, str]:
    """Tags of one account's range run over ``window``.

    The range ends share the account, so the multi-partition range holds that account only,
    whatever the partitions' order.
    """
    return {
        ASSET_PARTITION_RANGE_START_TAG: account_date_key(account_id, window.start),
        ASSET_PARTITION_RANGE_END_TAG: account_date_key(account_id, window.end),
        ACCOUNT_TAG: account_id,
        SYNC_KIND_TAG: kind,
    }


#: How many accounts a grouped range run holds (absent on one-account runs).
ACCOUNT_COUNT_TAG = "finops/accounts"


def group_range_tags(
    first_account: str, last_account: str, accounts: int, window: DateRange, kind: str
) -> dict[str, str]:
    """Tags of a range run over ``window`` for the accounts from ``first`` to ``last``.

    The range holds every account between its ends in the partitions' order, so the caller
    passes a contiguous stretch. A one-account run keeps the per-account tag that
    ``dagster.yaml`` limits to one run at a time; a group cannot carry one tag per account,
    and the loader's advisory lock per account still serialises its writes.
    """
    if first_account == last_account:
        return account_range_tags(first_account, window, kind)
    return {
        ASSET_PARTITION_RANGE_START_TAG: account_date_key(first_account, window.start),
        ASSET_PARTITION_RANGE_END_TAG: account_date_key(last_account, window.end),
        ACCOUNT_COUNT_TAG: str(accounts),
        SYNC_KIND_TAG: kind,
    }


def daily_group_run_key(first_account: str, last_account: str, window: DateRange) -> str:
    """The key of a grouped daily run; a one-account group keeps :func:`daily_run_key`."""
    if first_account == last_account:
        return daily_run_key(first_account, window)
    return f"{SYNC_DAILY}:{first_account}..{last_account}:{window.start}:{window.end}"


def initial_history_run_key(account_id: str, window: DateRange) -> str:
    """The key of one part of an account's initial history.

    The database decides whether the history is requested (``initial_history_requested_at``);
    the key only stops an instance that remembers it from launching the same request twice.
    """
    return f"{SYNC_INITIAL}:{account_id}:{window.start}:{window.end}"


def daily_run_key(account_id: str, window: DateRange) -> str:
    """Dagster keys schedule runs by tick as well, so a re-evaluated tick launches nothing new."""
    return f"{SYNC_DAILY}:{account_id}:{window.start}:{window.end}"


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
