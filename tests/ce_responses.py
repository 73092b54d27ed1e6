"""Building GetCostAndUsage responses the way Cost Explorer shapes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from moto.moto_api._internal.models import moto_api_backend

MOTO_ACCOUNT_ID = "123456789012"
COST_METRICS = ("UnblendedCost", "AmortizedCost", "NetUnblendedCost")
TWO_SERVICES = [("Amazon EC2", "BoxUsage:t3.micro"), ("Amazon S3", "TimedStorage-ByteHrs")]


def group(
    service: str,
    usage_type: str,
    cost: str | Decimal,
    *,
    usage: str = "1",
    unit: str = "Hrs",
    currency: str = "USD",
) -> dict[str, Any]:
    metrics: dict[str, Any] = {m: {"Amount": str(cost), "Unit": currency} for m in COST_METRICS}
    metrics["UsageQuantity"] = {"Amount": usage, "Unit": unit}
    return {"Keys": [service, usage_type], "Metrics": metrics}


def day_result(
    day: dt.date, groups: Sequence[dict[str, Any]], *, estimated: bool = False
) -> dict[str, Any]:
    return {
        "TimePeriod": {
            "Start": day.isoformat(),
            "End": (day + dt.timedelta(days=1)).isoformat(),
        },
        "Total": {},
        "Groups": list(groups),
        "Estimated": estimated,
    }


def paginate(
    results: Sequence[dict[str, Any]], *, per_page: int, token_prefix: str = "page"
) -> list[dict[str, Any]]:
    """Split day results into pages chained by NextPageToken, as Cost Explorer does."""
    pages: list[dict[str, Any]] = []
    chunks = [list(results[i : i + per_page]) for i in range(0, len(results), per_page)] or [[]]
    for index, chunk in enumerate(chunks):
        page: dict[str, Any] = {
            "ResultsByTime": chunk,
            "GroupDefinitions": [
                {"Type": "DIMENSION", "Key": "SERVICE"},
                {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
            ],
            "DimensionValueAttributes": [],
        }
        if index < len(chunks) - 1:
            page["NextPageToken"] = f"{token_prefix}-{index + 1}"
        pages.append(page)
    return pages


def queue_moto_pages(pages: Sequence[dict[str, Any]], account_id: str = MOTO_ACCOUNT_ID) -> None:
    """Queue responses in moto's Cost Explorer; each distinct request body takes the next one."""
    for page in pages:
        moto_api_backend.set_ce_cost_usage(result=dict(page), account_id=account_id)


def simple_days(
    start: dt.date, days: int, services: Sequence[tuple[str, str]], *, base: str = "1.25"
) -> list[dict[str, Any]]:
    """Day results with one group per (service, usage type), cost varying by day and group."""
    results = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        groups = [
            group(service, usage_type, Decimal(base) * (offset + 1) + index)
            for index, (service, usage_type) in enumerate(services)
        ]
        results.append(day_result(day, groups))
    return results


def reset_moto_ce(account_id: str = MOTO_ACCOUNT_ID) -> None:
    """Forget moto's remembered responses, so the same request can get a restated answer."""
    from moto.ce.models import ce_backends

    backend = ce_backends[account_id]["global"]
    backend.cost_usage_results.clear()
    backend.cost_usage_results_queue.clear()
