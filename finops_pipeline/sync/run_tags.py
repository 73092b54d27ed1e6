"""Tags and run keys of the runs the sensors and the schedule request: pure helpers."""

from __future__ import annotations

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.sync.ranges import DateRange, account_date_key

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


def initial_history_run_key(account_id: str, window: DateRange) -> str:
    """The key of one part of an account's initial history.

    The database decides whether the history is requested (``initial_history_requested_at``);
    the key only stops an instance that remembers it from launching the same request twice.
    """
    return f"{SYNC_INITIAL}:{account_id}:{window.start}:{window.end}"


def daily_run_key(account_id: str, window: DateRange) -> str:
    """Dagster keys schedule runs by tick as well, so a re-evaluated tick launches nothing new."""
    return f"{SYNC_DAILY}:{account_id}:{window.start}:{window.end}"
