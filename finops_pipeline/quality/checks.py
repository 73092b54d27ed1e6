"""Data-quality checks on loaded cost data: pure functions from query results to findings.

Each check takes the facts ``finops_pipeline.db.quality`` reads (or, for reconciliation, the
provider's own totals), and returns a :class:`CheckResult` with one finding per account that
names the months, days and amounts at fault. Nothing here touches a database or Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from finops_pipeline.quality.findings import CheckResult, build_result, day_ranges

RECONCILIATION = "reconciliation"
FRESHNESS = "freshness"
COMPLETENESS = "completeness"
SANITY = "sanity"

#: Loaded and provider totals may differ by this much per account, month and currency.
RECONCILIATION_TOLERANCE = Decimal("0.01")

#: How old an account's latest final (not estimated) day may be, per provider, in days.
#: AWS: the three days before the pull stay estimated and the pull's own day is partial, so a
#: daily sync leaves the latest final day four days back; one more day for a check made before
#: the next sync, and one day of slack for a late run. Azure and GCP mark a month's days
#: estimated until the month closes (about the 5th of the next month), so up to ~36 days.
DEFAULT_MAX_LAG_DAYS: Mapping[str, int] = {"aws": 6, "azure": 40, "gcp": 40}


@dataclass(frozen=True)
class MonthTotal:
    """A cost total of one account for one month (or the part of it in a window), one currency."""

    cloud_account_id: str
    month: dt.date  # first day of the month
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class LatestFinalDay:
    """An account's newest day whose costs are no longer estimated."""

    cloud_account_id: str
    provider: str
    latest_final_day: dt.date | None
    registered_on: dt.date


@dataclass(frozen=True)
class DayCoverage:
    """One day of an account inside its synced windows (or with a load marker).

    ``loaded_rows`` is the row count the loader recorded for the day (None: no marker, e.g.
    loaded before markers existed, or never loaded); ``current_rows`` is what is there now.
    """

    cloud_account_id: str
    date: dt.date
    loaded_rows: int | None
    current_rows: int


@dataclass(frozen=True)
class CurrencyUse:
    """Rows of an account in one currency."""

    currency: str
    rows: int
    first_day: dt.date
    last_day: dt.date


@dataclass(frozen=True)
class AccountSanityFacts:
    """What the sanity check needs to know about one account's rows."""

    cloud_account_id: str
    currencies: tuple[CurrencyUse, ...] = ()
    blank_key_days: tuple[dt.date, ...] = ()
    blank_key_rows: int = 0
    wrong_provider_rows: int = 0
    future_days: tuple[dt.date, ...] = field(default=())


def _month(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def check_reconciliation(
    loaded: Iterable[MonthTotal],
    provider: Iterable[MonthTotal],
    *,
    accounts: Iterable[str] = (),
    tolerance: Decimal = RECONCILIATION_TOLERANCE,
) -> CheckResult:
    """Loaded sums must match the provider's own totals per account, month and currency.

    Both sides must cover the same window. A month and currency present on one side only is
    compared with zero, so a lost month or a currency the provider never billed fails too.
    """
    totals: dict[tuple[str, dt.date, str], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0)]
    )
    for side, rows in enumerate((loaded, provider)):
        for row in rows:
            totals[(row.cloud_account_id, row.month, row.currency)][side] += row.amount
    problems: dict[str, list[str]] = defaultdict(list)
    for (account, month, currency), (ours, theirs) in sorted(totals.items()):
        difference = ours - theirs
        if abs(difference) > tolerance:
            problems[account].append(
                f"{_month(month)} {currency}: loaded {ours:f}, provider {theirs:f} "
                f"(difference {difference:+f})"
            )
    seen = {account for account, _, _ in totals}
    return build_result(RECONCILIATION, [*accounts, *seen], problems)


def check_freshness(
    latest: Iterable[LatestFinalDay],
    *,
    today: dt.date,
    max_lag_days: Mapping[str, int] = DEFAULT_MAX_LAG_DAYS,
) -> CheckResult:
    """Each account's latest final day must be at most its provider's lag before ``today``.

    An account with no final day yet passes while it is younger than the lag (its first sync
    may still be running, or the provider has no data for a new account), and fails after.
    """
    problems: dict[str, list[str]] = defaultdict(list)
    accounts = []
    for row in latest:
        accounts.append(row.cloud_account_id)
        limit = max_lag_days.get(row.provider, max(DEFAULT_MAX_LAG_DAYS.values()))
        if row.latest_final_day is None:
            age = (today - row.registered_on).days
            if age > limit:
                problems[row.cloud_account_id].append(
                    f"no final day loaded, {age} days after registration (limit {limit})"
                )
            continue
        lag = (today - row.latest_final_day).days
        if lag > limit:
            problems[row.cloud_account_id].append(
                f"latest final day {row.latest_final_day.isoformat()} is {lag} days old "
                f"(limit {limit})"
            )
    return build_result(FRESHNESS, accounts, problems)


def check_completeness(days: Iterable[DayCoverage], *, accounts: Iterable[str] = ()) -> CheckResult:
    """No day inside an account's synced windows may be missing or changed since its load.

    A zero-cost day is a day the loader marked with ``loaded_rows = 0``. A day with neither a
    marker nor rows was never loaded (or was lost with its marker); a day whose row count moved
    away from its marker lost or gained rows outside a load.
    """
    missing: dict[str, list[dt.date]] = defaultdict(list)
    changed: dict[str, list[DayCoverage]] = defaultdict(list)
    seen = set()
    for day in days:
        seen.add(day.cloud_account_id)
        if day.loaded_rows is None:
            if day.current_rows == 0:
                missing[day.cloud_account_id].append(day.date)
        elif day.loaded_rows != day.current_rows:
            changed[day.cloud_account_id].append(day)
    problems: dict[str, list[str]] = defaultdict(list)
    for account, dates in missing.items():
        problems[account].append(f"{len(dates)} days missing: {day_ranges(dates)}")
    for account, moved in changed.items():
        moved.sort(key=lambda day: day.date)
        listed = ", ".join(
            f"{day.date.isoformat()} ({day.loaded_rows} rows loaded, {day.current_rows} now)"
            for day in moved[:10]
        )
        more = f" and {len(moved) - 10} more" if len(moved) > 10 else ""
        problems[account].append(f"{len(moved)} days changed since loaded: {listed}{more}")
    return build_result(COMPLETENESS, [*accounts, *seen], problems)


def check_sanity(facts: Sequence[AccountSanityFacts]) -> CheckResult:
    """One currency per account, no blank keys, rows under the account's provider, no future days.

    One currency: AWS bills an account in one currency (Cost Explorer reports USD), an Azure
    billing account and a GCP billing account have one billing currency each; two currencies in
    one account mean mixed-up data, and sums across them are meaningless.
    """
    problems: dict[str, list[str]] = defaultdict(list)
    for account in facts:
        found = problems[account.cloud_account_id]
        if len(account.currencies) > 1:
            found.append(
                f"{len(account.currencies)} currencies: "
                + ", ".join(
                    f"{use.currency} ({use.rows} rows, {use.first_day.isoformat()}.."
                    f"{use.last_day.isoformat()})"
                    for use in sorted(account.currencies, key=lambda use: -use.rows)
                )
            )
        if account.blank_key_rows:
            found.append(
                f"{account.blank_key_rows} rows with a NULL or blank key or a malformed "
                f"currency on {day_ranges(account.blank_key_days)}"
            )
        if account.wrong_provider_rows:
            found.append(f"{account.wrong_provider_rows} rows under another provider")
        if account.future_days:
            found.append(f"rows dated in the future: {day_ranges(account.future_days)}")
    return build_result(
        SANITY,
        [account.cloud_account_id for account in facts],
        {account: found for account, found in problems.items() if found},
    )
