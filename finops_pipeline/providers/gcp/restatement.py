"""Which usage days of a billing export must be read again (pure date logic).

The export keeps changing after first writing a day: late usage rows, credits added days
later, and rows of the last days of a month billed in the next invoice month. It never says
which days changed, but every row carries ``export_time``, and late rows land in newer
partitions. So, as Koku does, we keep ``max(export_time)`` per usage day (the day's
*watermark*) and re-pull exactly the days whose watermark moved; the cheap way to see them is
:func:`~finops_pipeline.providers.gcp.query.build_watermark_query` over the partitions loaded since the
last check. On top of that come the trailing restatement window and, early in a month, the
previous invoice month.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from finops_pipeline.sync.ranges import DateRange, contiguous_ranges
from finops_pipeline.sync.windows import (
    SyncPolicy,
    first_of_month,
    last_complete_day,
    previous_month_repull_due,
)

#: An invoice month is treated as open (its days estimated) until this day of the next month.
#: Cloud Billing closes a month's invoice in the first days of the next month; until then
#: late usage and credits may still be billed to it.
INVOICE_MONTH_CLOSE_DAY = 5

_INVOICE_MONTH = re.compile(r"(\d{4})(0[1-9]|1[0-2])")


def parse_invoice_month(text: str) -> dt.date:
    """``"202501"`` as the first day of that month.

    Raises:
        ValueError: not a YYYYMM month.
    """
    match = _INVOICE_MONTH.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a YYYYMM invoice month")
    return dt.date(int(match[1]), int(match[2]), 1)


def invoice_month_of(day: dt.date) -> str:
    """The invoice month a usage day normally belongs to, as YYYYMM."""
    return f"{day.year:04d}{day.month:02d}"


def invoice_month_open(
    invoice_month: str, as_of: dt.date, *, close_day: int = INVOICE_MONTH_CLOSE_DAY
) -> bool:
    """Whether ``invoice_month`` (YYYYMM) may still change, seen on ``as_of`` (UTC)."""
    month_start = parse_invoice_month(invoice_month)
    next_month = first_of_month(month_start + dt.timedelta(days=32))
    return as_of < next_month.replace(day=close_day)


def moved_days(
    stored: Mapping[dt.date, dt.datetime], fresh: Mapping[dt.date, dt.datetime]
) -> list[dt.date]:
    """Days whose fresh watermark is newer than the stored one, or that had none stored.

    ``fresh`` may cover only some days (those with rows exported since the last check); a day
    absent from it has not moved.
    """
    moved = []
    for day, watermark in fresh.items():
        if watermark.tzinfo is None:
            raise ValueError("watermarks must be timezone-aware")
        previous = stored.get(day)
        if previous is None or watermark > previous:
            moved.append(day)
    return sorted(moved)


@dataclass(frozen=True)
class RepullPlan:
    """The days to read again and why."""

    days: tuple[dt.date, ...]
    reasons: dict[dt.date, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ranges(self) -> list[DateRange]:
        """The days as the fewest contiguous ranges: one billing query each."""
        return contiguous_ranges(self.days)


def repull_plan(
    today: dt.date,
    policy: SyncPolicy,
    *,
    stored: Mapping[dt.date, dt.datetime],
    fresh: Mapping[dt.date, dt.datetime],
    earliest: dt.date | None = None,
) -> RepullPlan:
    """The usage days a scheduled run of one billing export re-reads.

    Args:
        today: The run's day (UTC).
        policy: Restatement window and previous-month re-pull, shared with the other providers.
        stored: Watermarks saved after the last successful pull.
        fresh: Watermarks just read (all days, or only days with newly exported rows).
        earliest: Days before this are never re-read (the export's or the project's start).
    """
    reasons: dict[dt.date, list[str]] = {}
    end = last_complete_day(today, include_today=policy.include_today)

    def add(day: dt.date, reason: str) -> None:
        if day > end or (earliest is not None and day < earliest):
            return
        reasons.setdefault(day, []).append(reason)

    for day in moved_days(stored, fresh):
        add(day, "export_time moved" if day in stored else "first rows exported")
    for offset in range(policy.restatement_days):
        add(
            end - dt.timedelta(days=offset), f"restatement window of {policy.restatement_days} days"
        )
    if previous_month_repull_due(today, policy):
        month_start = first_of_month(today, 1)
        day = month_start
        while day < first_of_month(today):
            add(day, f"previous invoice month {month_start:%Y%m} early in the month")
            day += dt.timedelta(days=1)
    days = tuple(sorted(reasons))
    return RepullPlan(days, {day: tuple(reasons[day]) for day in days})
