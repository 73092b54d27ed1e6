"""The GCP schedule hook (pure): the window stretches back to the days the export changed."""

from __future__ import annotations

import datetime as dt

from finops_pipeline.db.watermarks import DayWatermark
from finops_pipeline.providers.gcp.schedule import window_with_moved_days
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import ScheduledWindow, SyncPolicy

TODAY = dt.date(2026, 3, 20)
POLICY = SyncPolicy(restatement_days=3, month_repull_until_day=5)
BASE = ScheduledWindow(DateRange(dt.date(2026, 3, 17), dt.date(2026, 3, 19)), ("trailing",))


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def test_no_moved_day_keeps_the_base_window() -> None:
    day = dt.date(2026, 3, 2)
    same = {day: DayWatermark(day, _at(day, 9), _at(day, 9))}
    assert window_with_moved_days(TODAY, POLICY, BASE, {}) == BASE
    assert window_with_moved_days(TODAY, POLICY, BASE, same) == BASE


def test_the_window_reaches_back_to_the_oldest_moved_day() -> None:
    old, older = dt.date(2026, 3, 5), dt.date(2026, 2, 11)
    marks = {
        old: DayWatermark(old, _at(old, 9), _at(dt.date(2026, 3, 19), 2)),
        # Never loaded, but rows were exported for it since the last check.
        older: DayWatermark(older, None, _at(dt.date(2026, 3, 19), 2)),
    }
    planned = window_with_moved_days(TODAY, POLICY, BASE, marks)
    assert planned.window == DateRange(older, BASE.window.end)
    assert planned.reasons[0] == "trailing"
    assert "2 earlier day(s), oldest 2026-02-11" in planned.reasons[-1]


def test_moves_before_the_daily_history_or_inside_the_base_window_change_nothing() -> None:
    ancient, recent = dt.date(2024, 1, 3), dt.date(2026, 3, 18)
    marks = {
        ancient: DayWatermark(ancient, None, _at(TODAY, 1)),
        recent: DayWatermark(recent, _at(recent, 9), _at(TODAY, 1)),
    }
    assert window_with_moved_days(TODAY, POLICY, BASE, marks) == BASE
