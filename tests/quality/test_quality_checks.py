"""The data-quality checks' pure logic: facts in, per-account findings out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from finops_pipeline.quality import (
    AccountSanityFacts,
    CurrencyUse,
    DayCoverage,
    LatestFinalDay,
    MonthTotal,
    check_completeness,
    check_freshness,
    check_reconciliation,
    check_sanity,
    day_ranges,
)

A, B, C = "account-a", "account-b", "account-c"
OCT, NOV = dt.date(2025, 10, 1), dt.date(2025, 11, 1)


def day(n: int) -> dt.date:
    return dt.date(2025, 10, n)


def total(account: str, month: dt.date, amount: str, currency: str = "USD") -> MonthTotal:
    return MonthTotal(account, month, currency, Decimal(amount))


def test_day_ranges_are_compact_and_bounded() -> None:
    assert (
        day_ranges([day(5), day(3), day(4), day(9), day(9)]) == "2025-10-03..2025-10-05, 2025-10-09"
    )
    assert day_ranges([day(1), day(3), day(5), day(7)], limit=2) == (
        "2025-10-01, 2025-10-03 and 2 more days"
    )
    assert day_ranges([]) == ""


def test_reconciliation_allows_a_cent_per_account_month_and_currency() -> None:
    loaded = [
        total(A, OCT, "100.00"), total(A, NOV, "50.004"),
        total(B, OCT, "10.00"), total(B, OCT, "5.00", "EUR"),
    ]  # fmt: skip
    provider = [
        total(A, OCT, "100.01"), total(A, NOV, "50.00"),
        total(B, OCT, "10.02"), total(B, OCT, "5.00", "EUR"), total(B, NOV, "3.00"),
    ]  # fmt: skip
    result = check_reconciliation(loaded, provider, accounts=[C])
    assert [finding.cloud_account_id for finding in result.findings] == [A, B, C]
    assert result.per_account() == {
        A: "ok",
        B: "2025-10 USD: loaded 10.00, provider 10.02 (difference -0.02); "
        "2025-11 USD: loaded 0, provider 3.00 (difference -3.00)",
        C: "ok",
    }
    assert not result.passed and [finding.cloud_account_id for finding in result.failing] == [B]
    assert result.description.startswith("reconciliation: 1 of 3 accounts fail. account-b: ")


def test_reconciliation_fails_a_currency_the_provider_never_billed() -> None:
    result = check_reconciliation([total(A, OCT, "1.00", "EUR")], [])
    assert result.per_account() == {A: "2025-10 EUR: loaded 1.00, provider 0 (difference +1.00)"}


def test_freshness_uses_the_providers_lag() -> None:
    today = dt.date(2025, 12, 10)
    result = check_freshness(
        [
            LatestFinalDay(A, "aws", dt.date(2025, 12, 4), dt.date(2025, 1, 1)),  # 6 days: ok
            LatestFinalDay(B, "aws", dt.date(2025, 12, 3), dt.date(2025, 1, 1)),  # 7 days: late
            LatestFinalDay(C, "azure", dt.date(2025, 11, 1), dt.date(2025, 1, 1)),  # 39: ok
            LatestFinalDay("new", "aws", None, dt.date(2025, 12, 8)),  # registered 2 days ago
            LatestFinalDay("empty", "aws", None, dt.date(2025, 11, 1)),
        ],
        today=today,
    )
    assert result.per_account() == {
        A: "ok",
        B: "latest final day 2025-12-03 is 7 days old (limit 6)",
        C: "ok",
        "empty": "no final day loaded, 39 days after registration (limit 6)",
        "new": "ok",
    }
    strict = check_freshness(
        [LatestFinalDay(A, "aws", dt.date(2025, 12, 4), dt.date(2025, 1, 1))],
        today=today,
        max_lag_days={"aws": 2},
    )
    assert strict.per_account() == {A: "latest final day 2025-12-04 is 6 days old (limit 2)"}


def test_completeness_tells_zero_cost_from_missing_and_changed_days() -> None:
    days = [
        DayCoverage(A, day(1), loaded_rows=40, current_rows=40),
        DayCoverage(A, day(2), loaded_rows=0, current_rows=0),  # zero-cost day: fine
        DayCoverage(A, day(3), loaded_rows=None, current_rows=12),  # loaded before markers
        DayCoverage(B, day(1), loaded_rows=None, current_rows=0),
        DayCoverage(B, day(2), loaded_rows=None, current_rows=0),
        DayCoverage(B, day(4), loaded_rows=None, current_rows=0),
        DayCoverage(B, day(5), loaded_rows=30, current_rows=28),
        DayCoverage(B, day(6), loaded_rows=30, current_rows=0),
    ]
    result = check_completeness(days, accounts=[C])
    assert result.per_account() == {
        A: "ok",
        B: "3 days missing: 2025-10-01..2025-10-02, 2025-10-04; "
        "2 days changed since loaded: 2025-10-05 (30 rows loaded, 28 now), "
        "2025-10-06 (30 rows loaded, 0 now)",
        C: "ok",
    }


def test_sanity_names_each_problem() -> None:
    facts = [
        AccountSanityFacts(A, currencies=(CurrencyUse("USD", 90, day(1), day(31)),)),
        AccountSanityFacts(
            B,
            currencies=(
                CurrencyUse("EUR", 3, day(4), day(6)),
                CurrencyUse("USD", 80, day(1), day(31)),
            ),
            blank_key_days=(day(7), day(8)),
            blank_key_rows=2,
            wrong_provider_rows=1,
            future_days=(dt.date(2026, 1, 1),),
        ),
        AccountSanityFacts(C),
    ]
    result = check_sanity(facts)
    assert result.per_account() == {
        A: "ok",
        B: "2 currencies: USD (80 rows, 2025-10-01..2025-10-31), EUR (3 rows, "
        "2025-10-04..2025-10-06); 2 rows with a NULL or blank key or a malformed currency on "
        "2025-10-07..2025-10-08; 1 rows under another provider; rows dated in the future: "
        "2026-01-01",
        C: "ok",
    }
