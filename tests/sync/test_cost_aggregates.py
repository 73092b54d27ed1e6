"""The run report's running totals: exact, and bounded whatever the number of accounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from finops_pipeline.sync.amounts import DECIMAL_TEXT
from finops_pipeline.sync.collection import CollectionReport, CostAggregates


def window_rows(account: str, costs: list[str], *, currency: str = "USD") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cloud_account_id": account,
            "date": [dt.date(2026, 1, 1 + i) for i in range(len(costs))],
            "service": "EC2",
            "currency": currency,
            "unblended_cost": pd.array(costs, dtype=DECIMAL_TEXT),
        }
    )


def test_totals_are_exact_per_currency_and_the_top_list_stays_bounded() -> None:
    totals = CostAggregates(keep=3)
    for number in range(200):
        totals.add(window_rows(f"account-{number:03}", [f"{number}.000000000001", "-1E-12"]))
        totals.add(window_rows(f"account-{number:03}", ["0.5"], currency="EUR"))
        totals.close_account()
        assert len(totals.top) <= 3 and not totals._current
    assert totals.by_currency["USD"] == sum(Decimal(n) for n in range(200))
    assert totals.by_currency["EUR"] == Decimal("100.0")
    assert [(key[0], total, days) for key, total, days in totals.top] == [
        ("account-199", Decimal("199.000000000000"), 2),
        ("account-198", Decimal("198.000000000000"), 2),
        ("account-197", Decimal("197.000000000000"), 2),
    ]


def test_report_reads_its_totals() -> None:
    report = CollectionReport()
    report.totals.add(window_rows("a", ["1.10", "2.20"]))
    assert report.cost_by_currency() == {"USD": Decimal("3.30")}
    top = report.top_services()
    assert list(top.columns) == [
        "cloud_account_id",
        "service",
        "currency",
        "unblended_cost",
        "days",
    ]
    assert top.iloc[0]["unblended_cost"] == Decimal("3.30") and top.iloc[0]["days"] == 2
