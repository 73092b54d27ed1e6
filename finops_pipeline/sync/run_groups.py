"""Grouping the schedule's planned windows into range runs of many accounts.

A run costs 10–18 s of process start and bookkeeping through the daemon, and a daily window
of one account takes well under a second to fetch and load; at 10k accounts one run per
account is 10k runs a day. Accounts that share a provider and a window can share one range
run instead.

A multi-partition range run covers every account *between* its two ends in the dynamic
partitions' order, so a group must be a contiguous stretch of that order: an account in the
stretch that is not planned, or planned with another window, ends the group. Within a run,
collection isolates accounts (one account's failure does not stop the others' rows), and the
loader's advisory lock per (tenant, account) still allows one writer per account.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from finops_pipeline.sync.ranges import DateRange


@dataclass(frozen=True)
class PlannedWindow:
    """One account's window as the schedule planned it."""

    account_id: str
    provider: str
    window: DateRange
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunGroup:
    """Accounts, contiguous in the partitions' order, that one range run loads."""

    provider: str
    window: DateRange
    account_ids: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.account_ids[0]

    @property
    def last(self) -> str:
        return self.account_ids[-1]


def group_planned_windows(
    planned: Iterable[PlannedWindow], partition_order: Sequence[str], max_accounts: int
) -> list[RunGroup]:
    """Group planned windows into runs of up to ``max_accounts`` accounts.

    Args:
        planned: At most one planned window per account; accounts missing from
            ``partition_order`` (no partition yet) are left out.
        partition_order: The account partitions in the order the instance keeps them.
        max_accounts: The most accounts one run may hold (1 gives one run per account).

    Returns:
        Groups in partition order; every planned account with a partition is in exactly one.
    """
    if max_accounts < 1:
        raise ValueError("max_accounts must be at least 1")
    by_account = {window.account_id: window for window in planned}
    groups: list[RunGroup] = []
    current: list[PlannedWindow] = []

    def close() -> None:
        if current:
            reasons = tuple(dict.fromkeys(r for window in current for r in window.reasons))
            groups.append(
                RunGroup(
                    provider=current[0].provider,
                    window=current[0].window,
                    account_ids=tuple(window.account_id for window in current),
                    reasons=reasons,
                )
            )
            current.clear()

    for account_id in partition_order:
        window = by_account.get(account_id)
        if window is None:
            close()  # a range over this gap would also cover this account
            continue
        if current and (
            (window.provider, window.window) != (current[0].provider, current[0].window)
            or len(current) >= max_accounts
        ):
            close()
        current.append(window)
    close()
    return groups
