"""The reconciliation's ungrouped request and its parsing, and member discovery's paging,
without a network."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.providers.aws.organizations import discover_linked_accounts, discovery_period
from finops_pipeline.providers.aws.parsing import parse_total_pages
from finops_pipeline.providers.aws.request import build_daily_total_request

DAY = dt.date(2026, 3, 30)


def test_the_total_request_is_ungrouped_daily_with_an_exclusive_end() -> None:
    request = build_daily_total_request(DAY, DAY + dt.timedelta(days=2), linked_account="1" * 12)
    assert request == {
        "TimePeriod": {"Start": "2026-03-30", "End": "2026-04-02"},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["1" * 12]}},
    }
    assert "Filter" not in build_daily_total_request(DAY, DAY)
    with pytest.raises(ValueError):
        build_daily_total_request(DAY, DAY - dt.timedelta(days=1))


def _result(day: dt.date, amount: str | None, estimated: bool = False) -> dict[str, Any]:
    total = {} if amount is None else {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}
    return {
        "TimePeriod": {"Start": day.isoformat(), "End": (day + dt.timedelta(days=1)).isoformat()},
        "Total": total,
        "Groups": [],
        "Estimated": estimated,
    }


def test_totals_are_exact_per_day_and_keep_the_estimated_days() -> None:
    second = DAY + dt.timedelta(days=1)
    parsed = parse_total_pages(
        [
            {"ResultsByTime": [_result(DAY, "12.3456789012")]},
            {"ResultsByTime": [_result(second, "0", estimated=True), _result(DAY, None)]},
        ],
        "UnblendedCost",
    )
    assert parsed.by_day == {(DAY, "USD"): Decimal("12.3456789012"), (second, "USD"): Decimal(0)}
    assert parsed.estimated_days == frozenset({second})
    with pytest.raises(ProviderDataError):
        parse_total_pages([{"nothing": []}], "UnblendedCost")
    with pytest.raises(ProviderDataError, match="malformed UnblendedCost total"):
        parse_total_pages(
            [{"ResultsByTime": [{**_result(DAY, "1"), "Total": {"UnblendedCost": {}}}]}],
            "UnblendedCost",
        )


def test_discovery_follows_every_page_and_counts_each() -> None:
    pages = {
        None: {
            "DimensionValues": [
                {"Value": "210000000001", "Attributes": {"description": "payer"}},
                {"Value": "NoAccount", "Attributes": {}},
            ],
            "NextPageToken": "t1",
        },
        "t1": {"DimensionValues": [{"Value": "210000000002", "Attributes": {}}]},
    }
    asked: list[dict[str, Any]] = []

    def call(**request: Any) -> dict[str, Any]:
        asked.append(request)
        return pages[request.get("NextPageToken")]

    found = discover_linked_accounts(call, today=DAY)
    assert [(a.number, a.name) for a in found.accounts] == [
        ("210000000001", "payer"),
        ("210000000002", "210000000002"),
    ]
    assert found.paid_requests == 2
    start, end = discovery_period(DAY)
    assert (start, end) == (dt.date(2026, 2, 1), dt.date(2026, 3, 31))
    assert asked[0]["TimePeriod"] == {"Start": "2026-02-01", "End": "2026-03-31"}
    assert asked[1]["NextPageToken"] == "t1"
    assert {k: v for k, v in asked[1].items() if k != "NextPageToken"} == asked[0]


def test_discovery_stops_on_a_looping_token() -> None:
    def call(**_: Any) -> dict[str, Any]:
        return {"DimensionValues": [], "NextPageToken": "same"}

    with pytest.raises(ProviderDataError, match="endless"):
        discover_linked_accounts(call, today=DAY)
