"""Which days each account's runs should cover: pure date logic, no Dagster, no database.

The daily schedule re-reads a trailing **restatement window** because Cost Explorer changes
recent values after first reporting them (Koku and OpenCost re-read 3 days). In the first days
of a month it also re-reads the whole previous month until that month is final, and after an
outage it stretches back to the last successful sync. A new account gets the history Cost
Explorer keeps at daily granularity: the current month plus the previous 13.

Providers restate differently, so the schedule's window is per provider
(:data:`PROVIDER_RESTATEMENT`): Cost Explorer settles within days, while Azure Cost Management
changes a month until about the 5th of the next, so an Azure account re-reads every month that
is still open. Each window is a pure function of the provider, the day and the account's sync
state, so a schedule may plan accounts one by one or group them into range runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from finops_pipeline.config import (
    CE_DAILY_HISTORY_PREVIOUS_MONTHS,
    DEFAULT_AZURE_MONTH_CLOSE_DAY,
    DEFAULT_INITIAL_HISTORY_MONTHS,
    DEFAULT_MONTH_REPULL_UNTIL_DAY,
    DEFAULT_RESTATEMENT_DAYS,
    DEFAULT_SCHEDULE_HOUR_UTC,
    ENV_AZURE_MONTH_CLOSE_DAY,
    ENV_INITIAL_HISTORY_MONTHS,
    ENV_MONTH_REPULL_UNTIL_DAY,
    ENV_RESTATEMENT_DAYS,
    ENV_SCHEDULE_HOUR,
    FinopsConfig,
)
from finops_pipeline.constants import PROVIDER_AWS, PROVIDER_AZURE
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.sync.ranges import DateRange


@dataclass(frozen=True)
class SyncPolicy:
    """The knobs of the schedule and of the initial backfill.

    Attributes:
        schedule_hour_utc: Hour (0–23, UTC) the daily schedule runs at.
        restatement_days: Trailing days re-read every day, ending yesterday.
        month_repull_until_day: Last day of the month on which the previous month is re-read
            while it still has estimated rows (0 turns the re-pull off).
        include_today: Also read today, which Cost Explorer reports partially.
        initial_history_months: Previous months a new account's first backfill reads, besides
            the current month; None turns the initial backfill off.
        azure_month_close_day: Day of the next month until which Azure may change a month's
            costs; until then the month is re-read every day.
    """

    schedule_hour_utc: int = DEFAULT_SCHEDULE_HOUR_UTC
    restatement_days: int = DEFAULT_RESTATEMENT_DAYS
    month_repull_until_day: int = DEFAULT_MONTH_REPULL_UNTIL_DAY
    include_today: bool = False
    initial_history_months: int | None = DEFAULT_INITIAL_HISTORY_MONTHS
    azure_month_close_day: int = DEFAULT_AZURE_MONTH_CLOSE_DAY

    def __post_init__(self) -> None:
        if not 0 <= self.schedule_hour_utc <= 23:
            raise ConfigurationError(f"{ENV_SCHEDULE_HOUR} must be an hour from 0 to 23.")
        if not 1 <= self.restatement_days <= 62:
            raise ConfigurationError(f"{ENV_RESTATEMENT_DAYS} must be from 1 to 62 days.")
        if not 0 <= self.month_repull_until_day <= 28:
            raise ConfigurationError(
                f"{ENV_MONTH_REPULL_UNTIL_DAY} must be a day of the month from 0 (off) to 28."
            )
        if self.initial_history_months is not None and not (
            0 <= self.initial_history_months <= CE_DAILY_HISTORY_PREVIOUS_MONTHS
        ):
            raise ConfigurationError(
                f"{ENV_INITIAL_HISTORY_MONTHS} must be 0 to {CE_DAILY_HISTORY_PREVIOUS_MONTHS} "
                "previous months (Cost Explorer keeps no older daily data), or 'off'."
            )
        if not 1 <= self.azure_month_close_day <= 28:
            raise ConfigurationError(
                f"{ENV_AZURE_MONTH_CLOSE_DAY} must be a day of the month from 1 to 28."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncPolicy:
        """The policy from ``FINOPS_*`` variables (see ``finops_pipeline.config``)."""
        return cls.from_config(FinopsConfig.from_env(environ))

    @classmethod
    def from_config(cls, config: FinopsConfig) -> SyncPolicy:
        """The policy the deployment's configuration sets."""
        return cls(
            schedule_hour_utc=config.schedule_hour_utc,
            restatement_days=config.restatement_days,
            month_repull_until_day=config.month_repull_until_day,
            include_today=config.include_today,
            initial_history_months=config.initial_history_months,
            azure_month_close_day=config.azure_month_close_day,
        )


def first_of_month(day: dt.date, months_back: int = 0) -> dt.date:
    """The 1st of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + (day.month - 1) - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def daily_history_start(today: dt.date) -> dt.date:
    """The oldest day Cost Explorer still reports daily: the 1st, 13 months before this one."""
    return first_of_month(today, CE_DAILY_HISTORY_PREVIOUS_MONTHS)


def last_complete_day(today: dt.date, *, include_today: bool = False) -> dt.date:
    """Yesterday, since today's costs are still partial; today if asked for."""
    return today if include_today else today - dt.timedelta(days=1)


def initial_history_window(today: dt.date, policy: SyncPolicy) -> DateRange | None:
    """The first backfill of a new account: ``initial_history_months`` back, to yesterday.

    Returns:
        The window, or None when the initial backfill is turned off.
    """
    if policy.initial_history_months is None:
        return None
    end = last_complete_day(today, include_today=policy.include_today)
    start = max(first_of_month(today, policy.initial_history_months), daily_history_start(today))
    # On the 1st the current month has no complete day yet; the window still ends yesterday.
    start = min(start, end)
    return DateRange(start, end)


def uncovered_ranges(window: DateRange, covered: Iterable[DateRange]) -> list[DateRange]:
    """The days of ``window`` no range in ``covered`` includes, as the fewest ranges, in order.

    An account whose history was partly loaded already (by ``finops sync`` or a backfill) gets
    only the missing days requested: every Cost Explorer page is paid.
    """
    gaps: list[DateRange] = []
    cursor = window.start
    for done in sorted(covered):
        if done.end < cursor or done.start > window.end:
            continue
        if done.start > cursor:
            gaps.append(DateRange(cursor, done.start - dt.timedelta(days=1)))
        cursor = max(cursor, done.end + dt.timedelta(days=1))
        if cursor > window.end:
            return gaps
    if cursor <= window.end:
        gaps.append(DateRange(cursor, window.end))
    return gaps


@dataclass(frozen=True)
class ScheduledWindow:
    """One account's window for a scheduled run, and why it is that wide."""

    window: DateRange
    reasons: tuple[str, ...] = field(default=())


class Restatement(StrEnum):
    """How a provider's reported costs settle, which decides what its daily run re-reads."""

    #: Recent days change for a few days (Cost Explorer): a trailing window of
    #: ``restatement_days``, plus the previous month in the first days while it is estimated.
    TRAILING_DAYS = "trailing-days"
    #: A month changes until a day of the next (Azure): the current month every day, and the
    #: previous one until it has closed and been read once since.
    OPEN_MONTHS = "open-months"


#: Each provider's restatement; providers not listed use :attr:`Restatement.TRAILING_DAYS`.
PROVIDER_RESTATEMENT: dict[str, Restatement] = {
    PROVIDER_AZURE: Restatement.OPEN_MONTHS,
}


def restatement_of(provider: str) -> Restatement:
    """How ``provider``'s costs settle."""
    return PROVIDER_RESTATEMENT.get(provider, Restatement.TRAILING_DAYS)


def previous_month_repull_due(today: dt.date, policy: SyncPolicy) -> bool:
    """Whether today is one of the days the previous month may still be re-read."""
    return today.day <= policy.month_repull_until_day


def previous_month_state_needed(today: dt.date, policy: SyncPolicy, provider: str) -> bool:
    """Whether the window of a ``provider`` account today depends on ``previous_month_final``
    (so the schedule must look up which accounts still hold estimated rows)."""
    if restatement_of(provider) is Restatement.OPEN_MONTHS:
        return True
    return previous_month_repull_due(today, policy)


def scheduled_window(
    today: dt.date,
    policy: SyncPolicy,
    *,
    last_success_at: dt.datetime | None,
    previous_month_final: bool,
    provider: str = PROVIDER_AWS,
) -> ScheduledWindow:
    """The days one account's daily run re-reads.

    Args:
        today: The schedule's day (UTC).
        policy: The knobs.
        last_success_at: When the account last synced successfully (UTC), or None if never.
        previous_month_final: True when the previous month has no estimated rows left for this
            account, so it need not be re-read.
        provider: The account's provider, which decides how its costs settle
            (:func:`restatement_of`).

    Returns:
        A window ending yesterday (today with ``include_today``), never older than the daily
        history Cost Explorer keeps.
    """
    if restatement_of(provider) is Restatement.OPEN_MONTHS:
        return _open_months_window(
            today,
            policy,
            last_success_at=last_success_at,
            previous_month_final=previous_month_final,
        )
    end = last_complete_day(today, include_today=policy.include_today)
    start = end - dt.timedelta(days=policy.restatement_days - 1)
    reasons = [f"restatement window of {policy.restatement_days} days"]
    if previous_month_repull_due(today, policy) and not previous_month_final:
        month_start = first_of_month(today, 1)
        if month_start < start:
            start = month_start
            reasons.append(f"previous month {month_start:%Y-%m} is not final yet")
    if last_success_at is not None:
        # The run on the day after the last success would have started here; everything since
        # was missed (the daemon was down, or runs failed).
        last_day = last_success_at.astimezone(dt.UTC).date()
        missed_end = last_complete_day(
            last_day + dt.timedelta(days=1), include_today=policy.include_today
        )
        gap_start = missed_end - dt.timedelta(days=policy.restatement_days - 1)
        if gap_start < start:
            start = gap_start
            reasons.append(f"gap since the last successful sync on {last_day}")
    floor = daily_history_start(today)
    if start < floor:
        start = floor
        reasons.append(f"capped at Cost Explorer's daily history ({floor})")
    return ScheduledWindow(DateRange(min(start, end), end), tuple(reasons))


def _open_months_window(
    today: dt.date,
    policy: SyncPolicy,
    *,
    last_success_at: dt.datetime | None,
    previous_month_final: bool,
) -> ScheduledWindow:
    """Every month that may still change: the current one, and the previous one until it has
    closed (``azure_month_close_day``) and been read once after closing (no estimated rows)."""
    end = last_complete_day(today, include_today=policy.include_today)
    start = first_of_month(today)
    reasons = [f"current month {start:%Y-%m} is open"]
    close_day = policy.azure_month_close_day
    if today.day <= close_day or not previous_month_final:
        start = first_of_month(today, 1)
        reasons.append(
            f"previous month {start:%Y-%m} is open until the {close_day}th"
            if today.day <= close_day
            else f"previous month {start:%Y-%m} has closed and is read once more as final"
        )
    if last_success_at is not None:
        # Every day since the last success was missed, and its month was open then.
        gap_start = first_of_month(last_success_at.astimezone(dt.UTC).date())
        if gap_start < start:
            start = gap_start
            reasons.append(f"gap since the last successful sync in {gap_start:%Y-%m}")
    floor = daily_history_start(today)
    if start < floor:
        start = floor
        reasons.append(f"capped at the daily history ({floor})")
    return ScheduledWindow(DateRange(min(start, end), end), tuple(reasons))
