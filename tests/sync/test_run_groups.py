"""Grouping planned windows into range runs: contiguous, same provider and window, bounded."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.run_groups import PlannedWindow, group_planned_windows

DAILY = DateRange(dt.date(2026, 3, 7), dt.date(2026, 3, 9))
STRETCHED = DateRange(dt.date(2026, 3, 1), dt.date(2026, 3, 9))


def plan(account: str, window: DateRange = DAILY, provider: str = "aws") -> PlannedWindow:
    return PlannedWindow(account, provider, window, (f"reason {window.days}",))


def test_accounts_sharing_a_window_share_runs_of_at_most_n() -> None:
    order = [f"a{i:02}" for i in range(7)]
    groups = group_planned_windows([plan(a) for a in order], order, max_accounts=3)
    assert [g.account_ids for g in groups] == [
        ("a00", "a01", "a02"),
        ("a03", "a04", "a05"),
        ("a06",),
    ]
    assert {g.window for g in groups} == {DAILY}
    assert groups[0].reasons == ("reason 3",)


def test_another_window_another_provider_or_a_gap_ends_a_group() -> None:
    order = ["a", "b", "c", "d", "e", "f", "g"]
    planned = [
        plan("a"),
        plan("b"),
        plan("c", STRETCHED),  # missed days: its own window
        plan("d"),
        # "e" has a partition but is not planned (inactive): a range over it would load it
        plan("f"),
        plan("g", provider="azure"),
        plan("unpartitioned"),
    ]
    groups = group_planned_windows(planned, order, max_accounts=50)
    assert [(g.account_ids, g.provider, g.window) for g in groups] == [
        (("a", "b"), "aws", DAILY),
        (("c",), "aws", STRETCHED),
        (("d",), "aws", DAILY),
        (("f",), "aws", DAILY),
        (("g",), "azure", DAILY),
    ]


def test_one_account_per_run_when_n_is_one_and_n_must_be_positive() -> None:
    order = ["a", "b"]
    assert len(group_planned_windows([plan("a"), plan("b")], order, max_accounts=1)) == 2
    with pytest.raises(ValueError):
        group_planned_windows([], order, max_accounts=0)
