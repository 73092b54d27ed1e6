"""Cost Management Query requests: the scope, the body, and the windows a range splits into.

Every request for one range uses :func:`build_query_body` and :func:`encode_query_body`, so the
bytes POSTed to the first page and to every ``nextLink`` are identical.

**How long one query may be.** ``QueryTimePeriod`` in the REST specification documents no limit
(Azure/azure-rest-api-specs, specification/cost-management/CostManagement.Management/models.tsp:
"The start and end date for pulling data for the query"), while the export time period beside it
says "The maximum date range is 1 calendar month". Microsoft's Cost Management query guardrails
(microsoft/GitHub-Copilot-for-Azure, plugin/skills/azure-cost/cost-query/guardrails.md, also in
microsoft/azure-skills skills/azure-cost/cost-query/guardrails.md) give the rule the service
applies: with ``Daily`` granularity the maximum range is one month, and a longer ``from`` is
**silently truncated** to ``to - 1 month + 1 day``; beyond 37 months the query is a 400 at any
granularity; the earliest ``from`` is 2014-05-01. A silent truncation would lose days without
an error, so every window here satisfies that rule exactly (:func:`query_keeps_whole_window`),
and a range is split greedily into the fewest such windows (:func:`split_query_windows`): a
13-month range aligned on months is 13 windows, one per month.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from finops_pipeline.providers.azure.errors import AzureConfigurationError
from finops_pipeline.sync.ranges import DateRange

#: Cost Management allows at most two groupings per query.
MAX_GROUPINGS = 2
DEFAULT_GROUPING: tuple[str, ...] = ("ServiceName", "Meter")
#: ``Cost`` is the MCA/MOSP name of the amount; EA scopes and ``Usage`` queries call it
#: ``PreTaxCost``. Parsing accepts either.
DEFAULT_COST_COLUMN = "Cost"
USAGE_QUANTITY_COLUMN = "UsageQuantity"
#: Rows per page to ask for with ``$top``; the service's maximum.
PAGE_SIZE = 5000
#: Daily queries keep at most one month (see the module docstring).
MAX_QUERY_MONTHS = 1
#: Beyond this span the service answers 400 at any granularity.
ABSOLUTE_MAX_MONTHS = 37
EARLIEST_QUERY_DAY = dt.date(2014, 5, 1)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.()-]{0,89}$")


class CostType(StrEnum):
    """The query's ``type``: what the Cost column means."""

    #: Charges as billed: reservation and savings plan purchases on the day bought.
    ACTUAL = "ActualCost"
    #: Purchases spread over the days that used them; unused commitment shown separately.
    AMORTIZED = "AmortizedCost"


class ScopeKind(StrEnum):
    """Where a query runs. Subscriptions are collected today; the others are room to grow."""

    SUBSCRIPTION = "subscription"
    BILLING_ACCOUNT = "billing_account"
    MANAGEMENT_GROUP = "management_group"


@dataclass(frozen=True)
class CostScope:
    """A Cost Management scope; its ARM path is built here and nowhere else."""

    kind: ScopeKind
    identifier: str

    def __post_init__(self) -> None:
        if self.kind is ScopeKind.SUBSCRIPTION:
            if not _GUID.match(self.identifier):
                raise AzureConfigurationError(
                    f"{self.identifier!r} is not an Azure subscription id; it is a GUID such as "
                    "00000000-0000-0000-0000-000000000000 (Azure portal > Subscriptions)."
                )
        elif not _PLAIN_ID.match(self.identifier):
            raise AzureConfigurationError(
                f"{self.identifier!r} is not a valid {self.kind.value.replace('_', ' ')} id."
            )

    @classmethod
    def subscription(cls, subscription_id: str) -> CostScope:
        return cls(ScopeKind.SUBSCRIPTION, subscription_id.strip().lower())

    @classmethod
    def billing_account(cls, billing_account_id: str) -> CostScope:
        return cls(ScopeKind.BILLING_ACCOUNT, billing_account_id.strip())

    @classmethod
    def management_group(cls, group_id: str) -> CostScope:
        return cls(ScopeKind.MANAGEMENT_GROUP, group_id.strip())

    @property
    def path(self) -> str:
        """The ARM path, e.g. ``/subscriptions/{id}``."""
        if self.kind is ScopeKind.SUBSCRIPTION:
            return f"/subscriptions/{self.identifier}"
        if self.kind is ScopeKind.BILLING_ACCOUNT:
            return f"/providers/Microsoft.Billing/billingAccounts/{self.identifier}"
        return f"/providers/Microsoft.Management/managementGroups/{self.identifier}"

    @property
    def label(self) -> str:
        """How messages name the scope."""
        return f"{self.kind.value.replace('_', ' ')} {self.identifier}"

    def __str__(self) -> str:
        return self.path


def time_period(window: DateRange) -> dict[str, str]:
    """``timePeriod`` for inclusive UTC days: ``to`` is inclusive, so it is the last second."""
    return {
        "from": f"{window.start.isoformat()}T00:00:00Z",
        "to": f"{window.end.isoformat()}T23:59:59Z",
    }


def build_query_body(
    cost_type: CostType,
    window: DateRange,
    *,
    grouping: Sequence[str] = DEFAULT_GROUPING,
    cost_column: str = DEFAULT_COST_COLUMN,
) -> dict[str, Any]:
    """The Query body for one window: daily sums of cost and usage quantity per group.

    Aggregation aliases equal their column names, so the response's columns carry the same
    names whichever of the two the service reports.
    """
    if len(grouping) > MAX_GROUPINGS:
        # No grouping at all is the subscription's own daily total, per currency.
        raise ValueError(f"Cost Management accepts at most {MAX_GROUPINGS} groupings")
    if len(set(grouping)) != len(grouping):
        raise ValueError("groupings must be distinct")
    if not query_keeps_whole_window(window):
        raise ValueError(f"{window} is longer than one query keeps; split it first")
    return {
        "type": CostType(cost_type).value,
        "timeframe": "Custom",
        "timePeriod": time_period(window),
        "dataset": {
            "granularity": "Daily",
            "aggregation": {
                cost_column: {"name": cost_column, "function": "Sum"},
                USAGE_QUANTITY_COLUMN: {"name": USAGE_QUANTITY_COLUMN, "function": "Sum"},
            },
            "grouping": [{"type": "Dimension", "name": name} for name in grouping],
        },
    }


def encode_query_body(body: dict[str, Any]) -> bytes:
    """The exact bytes sent for every page of one query."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


# --- windows -------------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, clamped to the target month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, _month_length(year, month)))


def _month_length(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).day


def query_keeps_whole_window(window: DateRange, *, months: int = MAX_QUERY_MONTHS) -> bool:
    """Whether a Daily query for ``window`` comes back whole, not truncated.

    The service moves ``from`` forward to ``to - months + 1 day`` when it is earlier.
    """
    if window.end < window.start:
        return False
    return window.start >= add_months(window.end, -months) + dt.timedelta(days=1)


def longest_window_from(start: dt.date, *, months: int = MAX_QUERY_MONTHS) -> dt.date:
    """The last day one query starting on ``start`` can reach without truncation."""
    # ``to - months`` never decreases as ``to`` grows, so the whole days form a prefix:
    # scan back from the furthest candidate to the first one that is kept.
    end = add_months(start, months) + dt.timedelta(days=1)
    while not query_keeps_whole_window(DateRange(start, end), months=months):
        end -= dt.timedelta(days=1)
    return end


def split_query_windows(window: DateRange, *, months: int = MAX_QUERY_MONTHS) -> list[DateRange]:
    """The fewest windows, in order, covering ``window`` with no query truncated.

    Greedy is optimal here: each window reaches as far as any window starting on or after its
    start could, so no other cover finishes in fewer windows.
    """
    if window.end < window.start:
        raise ValueError(f"end {window.end} is before start {window.start}")
    if window.start < EARLIEST_QUERY_DAY:
        raise ValueError(f"Cost Management has no data before {EARLIEST_QUERY_DAY}")
    windows: list[DateRange] = []
    start = window.start
    while start <= window.end:
        end = min(longest_window_from(start, months=months), window.end)
        windows.append(DateRange(start, end))
        start = end + dt.timedelta(days=1)
    return windows
