"""GCP's part of the daily schedule: widen a project's window to the days its export changed.

Pure: a function of today, the sync policy, the account's base window and its stored
watermarks (see :mod:`finops_pipeline.db.watermarks`). The run that loads a project also
checks, with one cheap query per export, which days got rows exported since the last check;
their newer ``max(export_time)`` is stored as *observed*, and the next scheduled run re-reads
them.

The window stretches back to the oldest moved day rather than adding separate ranges: the
cost query bounds ``_PARTITIONTIME`` from below only (late rows land in newer partitions), so
re-reading any day scans every partition loaded since that day anyway, and one query over
the span bills no more bytes than a query for that day alone, while each extra query would
bill BigQuery's 10 MiB minimum again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from finops_pipeline.db.watermarks import DayWatermark
from finops_pipeline.providers.gcp.restatement import repull_plan
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import ScheduledWindow, SyncPolicy, daily_history_start


def window_with_moved_days(
    today: dt.date,
    policy: SyncPolicy,
    base: ScheduledWindow,
    watermarks: Mapping[dt.date, DayWatermark],
) -> ScheduledWindow:
    """``base`` stretched back to the oldest day whose observed watermark moved.

    Args:
        today: The schedule's day (UTC).
        policy: Restatement window and previous-month re-pull.
        base: The window every account gets (trailing days, previous month, gaps).
        watermarks: The account's stored days (only moved ones are needed).
    """
    plan = repull_plan(
        today,
        policy,
        stored={day: mark.loaded for day, mark in watermarks.items() if mark.loaded is not None},
        fresh={day: mark.observed for day, mark in watermarks.items()},
        earliest=daily_history_start(today),
    )
    moved = [day for day, why in plan.reasons.items() if any("export" in r for r in why)]
    days = [*moved]
    if not days or min(days) >= base.window.start:
        return base
    start = min(days)
    reason = f"export_time moved on {len(moved)} earlier day(s), oldest {start}"
    return ScheduledWindow(DateRange(start, base.window.end), (*base.reasons, reason))
