"""Pure tests: watermarks, invoice months and the days a run re-pulls."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_pipeline.providers.gcp.restatement import (
    invoice_month_open,
    moved_days,
    parse_invoice_month,
    repull_plan,
)
from finops_pipeline.sync.windows import SyncPolicy


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_only_days_whose_watermark_moved_or_is_new_are_reported() -> None:
    stored = {
        dt.date(2025, 3, 1): utc(2025, 3, 2, 4),
        dt.date(2025, 3, 2): utc(2025, 3, 3, 4),
        dt.date(2025, 3, 3): utc(2025, 3, 4, 4),
    }
    fresh = {
        dt.date(2025, 3, 1): utc(2025, 3, 2, 4),  # unchanged
        dt.date(2025, 3, 2): utc(2025, 3, 6, 9),  # a late row
        dt.date(2025, 3, 4): utc(2025, 3, 5, 4),  # a new day
    }
    assert moved_days(stored, fresh) == [dt.date(2025, 3, 2), dt.date(2025, 3, 4)]
    assert moved_days(stored, stored) == []
    # An older fresh watermark (a partial look) is not a move.
    assert moved_days(stored, {dt.date(2025, 3, 3): utc(2025, 3, 3, 23)}) == []


def test_the_plan_is_moved_days_plus_the_trailing_window() -> None:
    policy = SyncPolicy(restatement_days=3, month_repull_until_day=5)
    today = dt.date(2025, 3, 20)
    stored = {dt.date(2025, 3, 2): utc(2025, 3, 3, 4), dt.date(2025, 3, 9): utc(2025, 3, 10, 4)}
    fresh = {dt.date(2025, 3, 2): utc(2025, 3, 18, 1), dt.date(2025, 3, 9): utc(2025, 3, 10, 4)}
    plan = repull_plan(today, policy, stored=stored, fresh=fresh)
    assert plan.days == (
        dt.date(2025, 3, 2),
        dt.date(2025, 3, 17),
        dt.date(2025, 3, 18),
        dt.date(2025, 3, 19),
    )
    assert plan.reasons[dt.date(2025, 3, 2)] == ("export_time moved",)
    assert [str(window) for window in plan.ranges] == [
        "2025-03-02..2025-03-02",
        "2025-03-17..2025-03-19",
    ]


def test_early_in_the_month_the_previous_invoice_month_is_re_pulled() -> None:
    policy = SyncPolicy(restatement_days=3, month_repull_until_day=5)
    plan = repull_plan(dt.date(2025, 3, 4), policy, stored={}, fresh={})
    assert plan.days[0] == dt.date(2025, 2, 1)
    assert plan.days[-1] == dt.date(2025, 3, 3)
    assert len(plan.days) == 28 + 3
    later = repull_plan(dt.date(2025, 3, 6), policy, stored={}, fresh={})
    assert later.days == (dt.date(2025, 3, 3), dt.date(2025, 3, 4), dt.date(2025, 3, 5))


def test_moves_before_the_earliest_day_or_after_yesterday_are_ignored() -> None:
    policy = SyncPolicy(restatement_days=1, month_repull_until_day=0)
    fresh = {dt.date(2024, 12, 31): utc(2025, 3, 1), dt.date(2025, 3, 20): utc(2025, 3, 20, 5)}
    plan = repull_plan(
        dt.date(2025, 3, 20), policy, stored={}, fresh=fresh, earliest=dt.date(2025, 1, 1)
    )
    assert plan.days == (dt.date(2025, 3, 19),)


def test_an_invoice_month_is_open_until_it_closes_early_next_month() -> None:
    assert invoice_month_open("202501", dt.date(2025, 1, 31))
    assert invoice_month_open("202501", dt.date(2025, 2, 4))
    assert not invoice_month_open("202501", dt.date(2025, 2, 5))
    assert invoice_month_open("202512", dt.date(2026, 1, 4))
    assert not invoice_month_open("202512", dt.date(2026, 1, 5))
    assert parse_invoice_month("202412") == dt.date(2024, 12, 1)
    for bad in ("2024-12", "202413", "abc"):
        with pytest.raises(ValueError):
            parse_invoice_month(bad)
