"""Partition diffs and folding run outcomes into last-sync updates: pure logic."""

from __future__ import annotations

import datetime as dt

from finops_pipeline.security.redaction import register_secrets
from finops_pipeline.sync.account_partitions import plan_partition_changes
from finops_pipeline.sync.outcomes import (
    MAX_ERROR_CHARS,
    AccountRunOutcome,
    fold_run_outcomes,
    sanitise_error,
)
from finops_pipeline.sync.ranges import DateRange

WHEN = dt.datetime(2026, 11, 26, 6, 5, tzinfo=dt.UTC)
RANGE = DateRange(dt.date(2026, 11, 1), dt.date(2026, 11, 25))


def outcome(account: str, status: str = "success", **kwargs) -> AccountRunOutcome:
    return AccountRunOutcome(account, "tenant", "run-1", status, **kwargs)


def test_partition_diff_adds_sorted_and_deletes_in_partition_order() -> None:
    changes = plan_partition_changes({"c", "a", "d"}, ["d", "x", "a", "y"])
    assert changes.added == ["c"]
    assert changes.deleted == ["x", "y"]
    assert plan_partition_changes({"a"}, ["a"]).empty


def test_success_uses_recorded_outcomes_and_skips_unrecorded_accounts() -> None:
    updates = fold_run_outcomes(
        run_id="run-1",
        run_succeeded=True,
        finished_at=WHEN,
        outcomes=[
            outcome(
                "a", rows_written=1, rows_in_window=5, range_start=RANGE.start, range_end=RANGE.end
            )
        ],
        run_ranges={"a": RANGE, "b": RANGE},  # b was skipped (disabled mid-run)
    )
    # last_sync_rows is what the range holds, not what this run happened to rewrite.
    assert [(u.account_id, u.status, u.rows_in_window, u.range_end) for u in updates] == [
        ("a", "success", 5, RANGE.end)
    ]


def test_success_without_outcomes_falls_back_to_partition_tags() -> None:
    updates = fold_run_outcomes(
        run_id="run-1",
        run_succeeded=True,
        finished_at=WHEN,
        outcomes=[],
        run_ranges={"a": RANGE, "b": RANGE},
    )
    assert [(u.account_id, u.status, u.range_start) for u in updates] == [
        ("a", "success", RANGE.start),
        ("b", "success", RANGE.start),
    ]


def test_failure_keeps_loaded_accounts_and_gives_the_others_an_error() -> None:
    updates = fold_run_outcomes(
        run_id="run-1",
        run_succeeded=False,
        finished_at=WHEN,
        outcomes=[outcome("a", rows_written=3), outcome("b", "failed", error="Denied: no")],
        run_ranges={"a": RANGE, "b": RANGE, "c": RANGE},
        run_error="step crashed",
    )
    assert [(u.account_id, u.status, u.error) for u in updates] == [
        ("a", "success", None),
        ("b", "failed", "Denied: no"),
        ("c", "failed", "step crashed"),
    ]


def test_errors_are_redacted_and_bounded() -> None:
    register_secrets("very-secret-value-123")
    assert "very-secret-value-123" not in sanitise_error("boom very-secret-value-123 boom")
    assert len(sanitise_error("x" * 5000)) == MAX_ERROR_CHARS
    # No message at all still says what to do, rather than storing an empty error.
    assert sanitise_error(None) == "the run failed; see its event log"
    assert sanitise_error("  \n ") == "the run failed; see its event log"
    assert sanitise_error("  Denied: no \n") == "Denied: no"
