"""Running a data-quality check over a scope of accounts and days: facts from Postgres, then
the pure check. The Dagster asset checks and ``finops demo`` call this; it knows no Dagster."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg

from finops_pipeline.db.quality import (
    accounts_with_provider_totals,
    checked_accounts,
    day_coverage,
    latest_final_days,
    reconciliation_totals,
    sanity_facts,
)
from finops_pipeline.quality.checks import (
    COMPLETENESS,
    DEFAULT_MAX_LAG_DAYS,
    FRESHNESS,
    RECONCILIATION,
    SANITY,
    check_completeness,
    check_freshness,
    check_reconciliation,
    check_sanity,
)
from finops_pipeline.quality.findings import CheckResult
from finops_pipeline.sync.ranges import DateRange

#: Every check, in the order the UI and the demo list them.
CHECK_NAMES: tuple[str, ...] = (RECONCILIATION, FRESHNESS, COMPLETENESS, SANITY)


@dataclass(frozen=True)
class CheckScope:
    """What a check looks at: some accounts over some days, or every active account's data.

    Attributes:
        account_ids: The accounts; empty means every active account.
        start: First day, or None for all days.
        end: Last day (inclusive), or None for all days.
    """

    account_ids: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def of_ranges(cls, ranges: Mapping[str, DateRange]) -> CheckScope:
        """The accounts and days a run covered (every account over the whole span)."""
        if not ranges:
            return cls()
        return cls(
            account_ids=tuple(sorted(ranges)),
            start=min(window.start for window in ranges.values()),
            end=max(window.end for window in ranges.values()),
        )

    @property
    def describe(self) -> str:
        """ "every active account, all days" or "3 accounts, 2025-10-01..2025-10-31"."""
        accounts = (
            f"{len(self.account_ids)} account{'s' if len(self.account_ids) != 1 else ''}"
            if self.account_ids
            else "every active account"
        )
        days = f"{self.start}..{self.end}" if self.start and self.end else "all days"
        return f"{accounts}, {days}"


def evaluate_check(
    connection: psycopg.Connection,
    check: str,
    scope: CheckScope,
    *,
    today: dt.date,
    max_lag_days: Mapping[str, int] | None = None,
) -> CheckResult:
    """Run one check over ``scope``.

    Reconciliation compares the days whose provider totals were stored with their loads;
    freshness looks at each account's newest final day whatever the scope's days;
    completeness stays inside the scope's days, sanity starts at its first.

    Raises:
        ValueError: ``check`` is not one of :data:`CHECK_NAMES`.
    """
    accounts: Sequence[str] = scope.account_ids or checked_accounts(connection)
    if check == RECONCILIATION:
        loaded, provider = reconciliation_totals(
            connection, accounts, start=scope.start, end=scope.end
        )
        return check_reconciliation(loaded, provider, accounts=accounts)
    if check == FRESHNESS:
        return check_freshness(
            latest_final_days(connection, accounts),
            today=today,
            max_lag_days={**DEFAULT_MAX_LAG_DAYS, **(max_lag_days or {})},
        )
    if check == COMPLETENESS:
        return check_completeness(
            day_coverage(connection, accounts, start=scope.start, end=scope.end),
            accounts=accounts,
        )
    if check == SANITY:
        # No end bound: rows dated after the scope (in the future) are what it looks for.
        return check_sanity(sanity_facts(connection, accounts, today=today, start=scope.start))
    raise ValueError(f"Unknown check {check!r}; use one of {', '.join(CHECK_NAMES)}.")


def unreconciled_accounts(connection: psycopg.Connection, scope: CheckScope) -> list[str]:
    """Accounts in ``scope`` with no provider totals to reconcile against (a provider without
    a ``provider_totals`` seam yet, or AWS with ``FINOPS_RECONCILE_AWS=0``): their
    reconciliation passes with nothing compared, so the check lists them."""
    accounts = scope.account_ids or tuple(checked_accounts(connection))
    covered = accounts_with_provider_totals(connection, accounts, start=scope.start, end=scope.end)
    return sorted(set(accounts) - covered)
