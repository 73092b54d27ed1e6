"""The Query body, the scope's path, and splitting ranges into the fewest whole windows."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from functools import cache

import pytest

from finops_pipeline.providers.azure.errors import AzureConfigurationError
from finops_pipeline.providers.azure.query import (
    CostScope,
    CostType,
    add_months,
    build_query_body,
    encode_query_body,
    longest_window_from,
    query_keeps_whole_window,
    split_query_windows,
)
from finops_pipeline.sync.ranges import DateRange

SUBSCRIPTION = "3f1c2b7a-9d4e-4c1b-8a2f-6e5d4c3b2a19"
JANUARY = DateRange(dt.date(2024, 1, 1), dt.date(2024, 1, 31))


@pytest.mark.parametrize("cost_type", list(CostType))
def test_body_asks_for_daily_sums_grouped_by_service_and_meter(cost_type: CostType) -> None:
    body = build_query_body(cost_type, JANUARY)

    assert body == {
        "type": cost_type.value,
        "timeframe": "Custom",
        "timePeriod": {"from": "2024-01-01T00:00:00Z", "to": "2024-01-31T23:59:59Z"},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {
                "Cost": {"name": "Cost", "function": "Sum"},
                "UsageQuantity": {"name": "UsageQuantity", "function": "Sum"},
            },
            "grouping": [
                {"type": "Dimension", "name": "ServiceName"},
                {"type": "Dimension", "name": "Meter"},
            ],
        },
    }


def test_body_can_name_the_legacy_cost_column() -> None:
    body = build_query_body(CostType.ACTUAL, JANUARY, cost_column="PreTaxCost")
    assert body["dataset"]["aggregation"]["PreTaxCost"] == {
        "name": "PreTaxCost",
        "function": "Sum",
    }


def test_a_third_grouping_or_a_window_a_query_would_truncate_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 2 groupings"):
        build_query_body(CostType.ACTUAL, JANUARY, grouping=("ServiceName", "Meter", "ResourceId"))
    with pytest.raises(ValueError, match="split it first"):
        build_query_body(CostType.ACTUAL, DateRange(dt.date(2024, 1, 1), dt.date(2024, 2, 1)))


def test_an_ungrouped_body_asks_for_the_daily_total() -> None:
    body = build_query_body(CostType.ACTUAL, JANUARY, grouping=())
    assert body["dataset"]["grouping"] == []
    assert body["dataset"]["granularity"] == "Daily"


def test_encoded_body_is_the_same_bytes_every_time() -> None:
    first = encode_query_body(build_query_body(CostType.AMORTIZED, JANUARY))
    again = encode_query_body(build_query_body(CostType.AMORTIZED, JANUARY))
    assert first == again
    assert json.loads(first) == build_query_body(CostType.AMORTIZED, JANUARY)


def test_scope_paths_are_built_in_one_place() -> None:
    assert CostScope.subscription(SUBSCRIPTION.upper()).path == f"/subscriptions/{SUBSCRIPTION}"
    assert (
        CostScope.billing_account("12345:6789").path
        == "/providers/Microsoft.Billing/billingAccounts/12345:6789"
    )
    assert (
        CostScope.management_group("finance").path
        == "/providers/Microsoft.Management/managementGroups/finance"
    )


@pytest.mark.parametrize("bad", ["", "not-a-guid", "../../providers/x", f"{SUBSCRIPTION}/x"])
def test_a_subscription_id_must_be_a_guid(bad: str) -> None:
    with pytest.raises(AzureConfigurationError, match="subscription id"):
        CostScope.subscription(bad)


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2024, 3, 31), -1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2024, 12, 15), 1) == dt.date(2025, 1, 15)


@pytest.mark.parametrize(
    ("start", "end", "whole"),
    [
        ("2024-01-01", "2024-01-31", True),  # a calendar month
        ("2024-01-01", "2024-02-01", False),  # from would move to Jan 2
        ("2024-01-15", "2024-02-14", True),
        ("2024-01-15", "2024-02-15", False),
        ("2024-01-31", "2024-02-29", True),  # to - 1 month is clamped to Jan 29
        ("2024-01-31", "2024-03-01", False),
        ("2024-02-01", "2024-02-29", True),
        ("2024-03-05", "2024-03-05", True),
    ],
)
def test_whole_window_rule(start: str, end: str, whole: bool) -> None:
    window = DateRange(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    assert query_keeps_whole_window(window) is whole


def test_longest_window_is_the_last_whole_day_and_nothing_later_is_whole() -> None:
    day = dt.date(2023, 1, 1)
    while day < dt.date(2025, 3, 1):
        end = longest_window_from(day)
        assert query_keeps_whole_window(DateRange(day, end))
        for later in range(1, 40):
            assert not query_keeps_whole_window(DateRange(day, end + dt.timedelta(days=later))), (
                day,
                end,
                later,
            )
        day += dt.timedelta(days=1)


def test_thirteen_calendar_months_split_into_thirteen_whole_months() -> None:
    windows = split_query_windows(DateRange(dt.date(2024, 1, 1), dt.date(2025, 1, 31)))

    assert len(windows) == 13
    for window in windows:
        assert window.start.day == 1
        assert (window.end + dt.timedelta(days=1)).day == 1
        assert query_keeps_whole_window(window)


def _fewest_windows_by_search(window: DateRange) -> int:
    """The true minimum, by dynamic programming over every whole window ending each day."""

    @cache
    def fewest(start: dt.date) -> int:
        if start > window.end:
            return 0
        best = None
        end = start
        while end <= window.end and query_keeps_whole_window(DateRange(start, end)):
            rest = fewest(end + dt.timedelta(days=1))
            best = rest + 1 if best is None else min(best, rest + 1)
            end += dt.timedelta(days=1)
        assert best is not None
        return best

    return fewest(window.start)


def test_splits_use_the_fewest_windows_for_any_range() -> None:
    rng = random.Random(10)
    cases = [DateRange(dt.date(2024, 1, 15), dt.date(2025, 2, 14))]  # 13 months, mid-month
    for _ in range(60):
        start = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(800))
        cases.append(DateRange(start, start + dt.timedelta(days=rng.randrange(420))))
    for case in cases:
        windows = split_query_windows(case)
        assert windows[0].start == case.start and windows[-1].end == case.end
        for before, after in itertools.pairwise(windows):
            assert after.start == before.end + dt.timedelta(days=1)
        assert all(query_keeps_whole_window(window) for window in windows)
        assert len(windows) == _fewest_windows_by_search(case), case


def test_no_data_before_may_2014() -> None:
    with pytest.raises(ValueError, match="2014-05-01"):
        split_query_windows(DateRange(dt.date(2014, 4, 30), dt.date(2014, 5, 2)))
