"""A check's scope: a run's accounts and days, or everything."""

from __future__ import annotations

import datetime as dt

from finops_pipeline.quality.evaluate import CHECK_NAMES, CheckScope
from finops_pipeline.sync.ranges import DateRange


def test_a_run_scope_spans_its_accounts_days_and_an_empty_one_is_everything() -> None:
    scope = CheckScope.of_ranges(
        {
            "b": DateRange(dt.date(2026, 1, 5), dt.date(2026, 1, 9)),
            "a": DateRange(dt.date(2026, 1, 1), dt.date(2026, 1, 3)),
        }
    )
    assert scope == CheckScope(("a", "b"), dt.date(2026, 1, 1), dt.date(2026, 1, 9))
    assert scope.describe == "2 accounts, 2026-01-01..2026-01-09"
    assert CheckScope.of_ranges({}).describe == "every active account, all days"
    assert CHECK_NAMES == ("reconciliation", "freshness", "completeness", "sanity")
