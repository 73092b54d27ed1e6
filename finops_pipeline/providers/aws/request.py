"""Building GetCostAndUsage requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from finops_pipeline.providers.aws.constants import CE_GROUP_BY, CE_METRICS, CE_TOTAL_METRIC

CostExplorerRequest = dict[str, Any]


def build_daily_cost_request(
    start: dt.date,
    end_inclusive: dt.date,
    *,
    linked_account: str | None = None,
    metrics: tuple[str, ...] = CE_METRICS,
    group_by: tuple[tuple[str, str], ...] = CE_GROUP_BY,
) -> CostExplorerRequest:
    """Build a DAILY GetCostAndUsage request covering ``start``..``end_inclusive`` (UTC days).

    Cost Explorer's ``TimePeriod.End`` is exclusive, while users and partitions think in
    inclusive days, so the request's End is the day after ``end_inclusive``.

    Args:
        start: First UTC day to fetch.
        end_inclusive: Last UTC day to fetch.
        linked_account: Restrict to one member account of an organisation, for payer credentials.
        metrics: Cost Explorer metric names.
        group_by: At most two (type, key) pairs; Cost Explorer rejects a third.

    Returns:
        Keyword arguments for ``ce.get_cost_and_usage`` without ``NextPageToken``.
    """
    if end_inclusive < start:
        raise ValueError(f"end {end_inclusive} is before start {start}")
    if not 1 <= len(group_by) <= 2:
        raise ValueError("Cost Explorer accepts one or two GroupBy entries")
    request: CostExplorerRequest = {
        "TimePeriod": {
            "Start": start.isoformat(),
            "End": (end_inclusive + dt.timedelta(days=1)).isoformat(),
        },
        "Granularity": "DAILY",
        "Metrics": list(metrics),
        "GroupBy": [{"Type": kind, "Key": key} for kind, key in group_by],
    }
    if linked_account:
        request["Filter"] = linked_account_filter(linked_account)
    return request


def linked_account_filter(linked_account: str) -> dict[str, Any]:
    """A Filter on one member account of an organisation (LINKED_ACCOUNT)."""
    return {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [linked_account]}}


def build_daily_total_request(
    start: dt.date, end_inclusive: dt.date, *, linked_account: str | None = None
) -> CostExplorerRequest:
    """An ungrouped DAILY UnblendedCost request: Cost Explorer's own total per day.

    The reconciliation check compares it with the sum of the grouped rows. Without GroupBy a
    day is one result, so a 14-month window fits one page: one paid request per window.
    """
    if end_inclusive < start:
        raise ValueError(f"end {end_inclusive} is before start {start}")
    request: CostExplorerRequest = {
        "TimePeriod": {
            "Start": start.isoformat(),
            "End": (end_inclusive + dt.timedelta(days=1)).isoformat(),  # exclusive
        },
        "Granularity": "DAILY",
        "Metrics": [CE_TOTAL_METRIC],
    }
    if linked_account:
        request["Filter"] = linked_account_filter(linked_account)
    return request
