"""Turning blocks of ``account|date`` partition keys into per-account date ranges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

# MultiPartitionsDefinition joins dimension keys in sorted dimension-name order:
# "account" sorts before "date", so keys read "<account>|<YYYY-MM-DD>".
KEY_SEPARATOR = "|"


@dataclass(frozen=True, order=True)
class DateRange:
    """An inclusive range of UTC days."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


def account_date_key(account_id: str, day: dt.date) -> str:
    """The multi-partition key for one account and day."""
    return f"{account_id}{KEY_SEPARATOR}{day.isoformat()}"


def split_partition_key(key: str) -> tuple[str, dt.date]:
    """Split ``"<account>|<date>"`` into its parts."""
    account_id, separator, day = str(key).rpartition(KEY_SEPARATOR)
    if not separator or not account_id:
        raise ValueError(f"{key!r} is not an '<account>|<date>' partition key")
    return account_id, dt.date.fromisoformat(day)


def contiguous_ranges(days: Iterable[dt.date]) -> list[DateRange]:
    """Collapse days into the fewest inclusive ranges, in order."""
    ranges: list[DateRange] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1].end + dt.timedelta(days=1):
            ranges[-1] = DateRange(ranges[-1].start, day)
        else:
            ranges.append(DateRange(day, day))
    return ranges


def ranges_by_account(keys: Iterable[str]) -> dict[str, list[DateRange]]:
    """Group partition keys by account; each account gets its contiguous date ranges.

    A run may hold any block of accounts × dates, so each account is fetched once per
    contiguous range rather than once per day.
    """
    days: dict[str, list[dt.date]] = {}
    for key in keys:
        account_id, day = split_partition_key(key)
        days.setdefault(account_id, []).append(day)
    return {
        account_id: contiguous_ranges(account_days) for account_id, account_days in days.items()
    }
