"""The schedule's and the initial backfill's windows: pure date logic."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_pipeline.errors import ConfigurationError
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.retries import retry_policy_from_env
from finops_pipeline.sync.windows import (
    ScheduledWindow,
    SyncPolicy,
    daily_history_start,
    first_of_month,
    initial_history_window,
    previous_month_state_needed,
    scheduled_window,
    uncovered_ranges,
)

D = dt.date
POLICY = SyncPolicy()


def at(day: dt.date, hour: int = 6) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def window(today: dt.date, **kwargs) -> DateRange:
    kwargs.setdefault("last_success_at", at(today - dt.timedelta(days=1)))
    kwargs.setdefault("previous_month_final", True)
    return scheduled_window(today, kwargs.pop("policy", POLICY), **kwargs).window


def test_first_of_month_crosses_years() -> None:
    assert first_of_month(D(2026, 2, 17), 0) == D(2026, 2, 1)
    assert first_of_month(D(2026, 2, 17), 2) == D(2025, 12, 1)
    assert first_of_month(D(2026, 2, 17), 13) == D(2025, 1, 1)


def test_default_window_is_three_days_ending_yesterday() -> None:
    assert window(D(2026, 11, 26)) == DateRange(D(2026, 11, 23), D(2026, 11, 25))


def test_include_today_and_wider_restatement() -> None:
    policy = SyncPolicy(restatement_days=5, include_today=True)
    assert window(D(2026, 11, 26), policy=policy) == DateRange(D(2026, 11, 22), D(2026, 11, 26))


@pytest.mark.parametrize(
    ("today", "final", "expected_start"),
    [
        (D(2026, 12, 1), False, D(2026, 11, 1)),
        (D(2026, 12, 5), False, D(2026, 11, 1)),
        (D(2026, 12, 6), False, D(2026, 12, 3)),  # past the re-pull days: final enough
        (D(2026, 12, 3), True, D(2026, 11, 30)),  # no estimated rows left: no re-pull
        (D(2027, 1, 2), False, D(2026, 12, 1)),  # across a year
    ],
)
def test_previous_month_is_re_read_in_the_first_days_until_final(
    today: dt.date, final: bool, expected_start: dt.date
) -> None:
    assert window(today, previous_month_final=final).start == expected_start


def test_month_repull_can_be_turned_off() -> None:
    policy = SyncPolicy(month_repull_until_day=0)
    assert window(D(2026, 12, 1), policy=policy, previous_month_final=False).start == D(
        2026, 11, 28
    )


def test_daily_runs_never_stretch_and_a_gap_is_covered() -> None:
    # Synced yesterday: the usual 3 days.
    assert window(D(2026, 11, 26), last_success_at=at(D(2026, 11, 25))).start == D(2026, 11, 23)
    # Last success 10 days ago: back to the window the day after it would have read.
    planned = scheduled_window(
        D(2026, 11, 26), POLICY, last_success_at=at(D(2026, 11, 16)), previous_month_final=True
    )
    assert planned.window == DateRange(D(2026, 11, 14), D(2026, 11, 25))
    assert any("gap" in reason for reason in planned.reasons)


def test_gap_is_capped_at_cost_explorer_daily_history() -> None:
    planned = scheduled_window(
        D(2026, 11, 26), POLICY, last_success_at=at(D(2024, 3, 1)), previous_month_final=True
    )
    assert planned.window.start == D(2025, 10, 1) == daily_history_start(D(2026, 11, 26))
    assert any("capped" in reason for reason in planned.reasons)


def test_never_synced_account_gets_the_plain_window() -> None:
    assert window(D(2026, 11, 26), last_success_at=None) == DateRange(
        D(2026, 11, 23), D(2026, 11, 25)
    )


def test_initial_history_is_current_plus_thirteen_months_to_yesterday() -> None:
    assert initial_history_window(D(2026, 11, 26), POLICY) == DateRange(
        D(2025, 10, 1), D(2026, 11, 25)
    )
    assert initial_history_window(
        D(2026, 11, 26), SyncPolicy(initial_history_months=0)
    ) == DateRange(D(2026, 11, 1), D(2026, 11, 25))
    # On the 1st the current month has no complete day: the window ends yesterday.
    assert initial_history_window(
        D(2026, 12, 1), SyncPolicy(initial_history_months=0)
    ) == DateRange(D(2026, 11, 30), D(2026, 11, 30))
    assert initial_history_window(D(2026, 11, 26), SyncPolicy(initial_history_months=None)) is None


def test_policy_from_env_and_bad_values() -> None:
    policy = SyncPolicy.from_env(
        {
            "FINOPS_SCHEDULE_HOUR_UTC": "3",
            "FINOPS_RESTATEMENT_DAYS": "7",
            "FINOPS_MONTH_REPULL_UNTIL_DAY": "10",
            "FINOPS_SYNC_INCLUDE_TODAY": "true",
            "FINOPS_INITIAL_HISTORY_MONTHS": "2",
        }
    )
    assert policy == SyncPolicy(3, 7, 10, True, 2)
    assert (
        SyncPolicy.from_env({"FINOPS_INITIAL_HISTORY_MONTHS": "off"}).initial_history_months is None
    )
    assert SyncPolicy.from_env({}) == SyncPolicy()
    for name, value in [
        ("FINOPS_SCHEDULE_HOUR_UTC", "24"),
        ("FINOPS_RESTATEMENT_DAYS", "0"),
        ("FINOPS_RESTATEMENT_DAYS", "three"),
        ("FINOPS_MONTH_REPULL_UNTIL_DAY", "31"),
        ("FINOPS_INITIAL_HISTORY_MONTHS", "14"),
    ]:
        with pytest.raises(ConfigurationError, match=name):
            SyncPolicy.from_env({name: value})


def test_retry_policy_backs_off_exponentially_with_jitter() -> None:
    import dagster as dg

    policy = retry_policy_from_env({})
    assert (policy.max_retries, policy.delay) == (3, 20.0)
    assert policy.backoff == dg.Backoff.EXPONENTIAL
    assert policy.jitter == dg.Jitter.PLUS_MINUS
    assert retry_policy_from_env({"FINOPS_RETRY_MAX": "1"}).max_retries == 1
    with pytest.raises(ConfigurationError):
        retry_policy_from_env({"FINOPS_RETRY_DELAY_SECONDS": "-1"})


JANUARY = DateRange(D(2026, 1, 1), D(2026, 1, 31))


@pytest.mark.parametrize(
    ("covered", "missing"),
    [
        ([], [JANUARY]),
        ([JANUARY], []),
        ([DateRange(D(2025, 12, 1), D(2026, 2, 28))], []),  # wider than the window
        (
            [DateRange(D(2026, 1, 10), D(2026, 1, 14))],
            [
                DateRange(D(2026, 1, 1), D(2026, 1, 9)),
                DateRange(D(2026, 1, 15), D(2026, 1, 31)),
            ],
        ),
        # Unsorted, overlapping, touching, and partly outside the window.
        (
            [
                DateRange(D(2026, 1, 20), D(2026, 2, 3)),
                DateRange(D(2025, 12, 28), D(2026, 1, 2)),
                DateRange(D(2026, 1, 5), D(2026, 1, 8)),
                DateRange(D(2026, 1, 7), D(2026, 1, 9)),
                DateRange(D(2026, 1, 10), D(2026, 1, 10)),
            ],
            [
                DateRange(D(2026, 1, 3), D(2026, 1, 4)),
                DateRange(D(2026, 1, 11), D(2026, 1, 19)),
            ],
        ),
        (
            [DateRange(D(2025, 11, 1), D(2025, 12, 31)), DateRange(D(2026, 2, 1), D(2026, 3, 1))],
            [JANUARY],
        ),
        (
            [DateRange(D(2026, 1, 1), D(2026, 1, 1)), DateRange(D(2026, 1, 31), D(2026, 1, 31))],
            [DateRange(D(2026, 1, 2), D(2026, 1, 30))],
        ),
    ],
)
def test_uncovered_ranges_are_the_days_no_loaded_range_holds(
    covered: list[DateRange], missing: list[DateRange]
) -> None:
    assert uncovered_ranges(JANUARY, covered) == missing


# --- Azure: open months ------------------------------------------------------------------


def azure_window(today: dt.date, **kwargs) -> ScheduledWindow:
    kwargs.setdefault("last_success_at", at(today - dt.timedelta(days=1)))
    kwargs.setdefault("previous_month_final", True)
    return scheduled_window(today, kwargs.pop("policy", POLICY), provider="azure", **kwargs)


@pytest.mark.parametrize(
    ("today", "final", "expected"),
    [
        # Mid-month: the current month to yesterday.
        (D(2026, 11, 26), True, DateRange(D(2026, 11, 1), D(2026, 11, 25))),
        # On the 1st the current month has no complete day: the previous month, whole.
        (D(2026, 12, 1), False, DateRange(D(2026, 11, 1), D(2026, 11, 30))),
        # Until the 5th the previous month may still change.
        (D(2026, 12, 5), True, DateRange(D(2026, 11, 1), D(2026, 12, 4))),
        # Closed, and read as final since: only the current month.
        (D(2026, 12, 6), True, DateRange(D(2026, 12, 1), D(2026, 12, 5))),
        # Closed but still estimated in the table (no read since it closed): once more.
        (D(2026, 12, 9), False, DateRange(D(2026, 11, 1), D(2026, 12, 8))),
        (D(2027, 1, 3), True, DateRange(D(2026, 12, 1), D(2027, 1, 2))),  # across a year
    ],
)
def test_azure_re_reads_the_open_months(today: dt.date, final: bool, expected: DateRange) -> None:
    assert azure_window(today, previous_month_final=final).window == expected


def test_azure_close_day_is_configurable_and_checked() -> None:
    policy = SyncPolicy(azure_month_close_day=2)
    assert azure_window(D(2026, 12, 3), policy=policy).window.start == D(2026, 12, 1)
    assert azure_window(D(2026, 12, 3)).window.start == D(2026, 11, 1)
    assert SyncPolicy.from_env({"FINOPS_AZURE_MONTH_CLOSE_DAY": "8"}).azure_month_close_day == 8
    with pytest.raises(ConfigurationError, match="FINOPS_AZURE_MONTH_CLOSE_DAY"):
        SyncPolicy(azure_month_close_day=0)
    with pytest.raises(ConfigurationError, match="FINOPS_AZURE_MONTH_CLOSE_DAY"):
        SyncPolicy.from_env({"FINOPS_AZURE_MONTH_CLOSE_DAY": "31"})


def test_azure_gap_goes_back_to_the_month_of_the_last_success_and_is_capped() -> None:
    planned = azure_window(D(2026, 11, 26), last_success_at=at(D(2026, 9, 17)))
    assert planned.window == DateRange(D(2026, 9, 1), D(2026, 11, 25))
    assert any("gap" in reason for reason in planned.reasons)
    capped = azure_window(D(2026, 11, 26), last_success_at=at(D(2023, 1, 1)))
    assert capped.window.start == daily_history_start(D(2026, 11, 26))


def test_aws_windows_do_not_change_with_the_azure_policy() -> None:
    for today in (D(2026, 11, 26), D(2026, 12, 1), D(2026, 12, 6)):
        for final in (True, False):
            plain = scheduled_window(
                today,
                POLICY,
                last_success_at=at(today - dt.timedelta(days=1)),
                previous_month_final=final,
            )
            assert window(today, previous_month_final=final, provider="aws") == plain.window
    assert previous_month_state_needed(D(2026, 12, 20), POLICY, "azure")
    assert not previous_month_state_needed(D(2026, 12, 20), POLICY, "aws")
