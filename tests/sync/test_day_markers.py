"""The loader marks every day of a window it replaces, in the same transaction as the rows."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from finops_pipeline.db.quality import day_coverage
from finops_pipeline.quality import check_completeness
from finops_pipeline.resources import AwsCostExplorerResource
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import open_credentials
from finops_pipeline.sync.collection import collect_costs
from finops_pipeline.sync.ranges import DateRange
from tests.ce_responses import (
    TWO_SERVICES,
    StrictMotoCostExplorer,
    day_result,
    group,
    paginate,
    queue_moto_pages,
)
from tests.cost_rows import add_account

pytestmark = pytest.mark.integration

START = dt.date(2025, 10, 1)


def _markers(connection: psycopg.Connection, account: str) -> dict[dt.date, int]:
    return dict(
        connection.execute(
            "SELECT date, row_count FROM cost_data_days WHERE cloud_account_id = %s", (account,)
        ).fetchall()
    )


def test_a_load_marks_zero_cost_days_and_a_failed_load_marks_nothing(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    aws: None,
    moto_ce: StrictMotoCostExplorer,
) -> None:
    account = add_account(connection, key_ring, "tenant-a", "123456789012")
    # Day 2 has no costs at all: Cost Explorer returns the day with no groups.
    days = [
        day_result(START, [group(*TWO_SERVICES[0], "1.5"), group(*TWO_SERVICES[1], "2")]),
        day_result(START + dt.timedelta(days=1), []),
        day_result(START + dt.timedelta(days=2), [group(*TWO_SERVICES[0], "3")]),
    ]
    queue_moto_pages(paginate(days, per_page=3))
    report = collect_costs(
        {account: [DateRange(START, START + dt.timedelta(days=2))]},
        connection=connection,
        decrypt=lambda a: open_credentials(a, key_ring),
        collectors={"aws": AwsCostExplorerResource(max_attempts=1)},
        run_id="run-1",
    )
    assert not report.failures
    assert _markers(connection, account) == {
        START: 2,
        START + dt.timedelta(days=1): 0,
        START + dt.timedelta(days=2): 1,
    }
    connection.execute(
        "INSERT INTO account_sync_runs (cloud_account_id, run_id, tenant_id, status, "
        "range_start, range_end) VALUES (%s, 'run-1', 'tenant-a', 'success', %s, %s)",
        (account, START, START + dt.timedelta(days=2)),
    )
    # The zero-cost day is complete; a day whose rows vanish is not.
    assert check_completeness(day_coverage(connection, [account])).passed
    connection.execute(
        "DELETE FROM cost_data WHERE cloud_account_id = %s AND date = %s", (account, START)
    )
    result = check_completeness(day_coverage(connection, [account]))
    assert result.per_account()[account] == (
        f"1 days changed since loaded: {START.isoformat()} (2 rows loaded, 0 now)"
    )


def test_markers_roll_back_with_the_rows(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import finops_pipeline.db.window_load as window_load

    account = add_account(connection, key_ring, "tenant-a", "123456789012")
    queue_moto_pages(paginate([day_result(START, [group(*TWO_SERVICES[0], "1")])], per_page=1))

    def broken_marker(*_: object, **__: object) -> int:
        raise psycopg.errors.DiskFull("disk full")

    monkeypatch.setattr(window_load, "record_loaded_days", broken_marker)
    report = collect_costs(
        {account: [DateRange(START, START)]},
        connection=connection,
        decrypt=lambda a: open_credentials(a, key_ring),
        collectors={"aws": AwsCostExplorerResource(max_attempts=1)},
        run_id="run-1",
    )
    assert [f.error_type for f in report.failures] == ["DatabaseError"]
    assert connection.execute(
        "SELECT count(*) FROM cost_data WHERE cloud_account_id = %s", (account,)
    ).fetchone() == (0,)
    assert _markers(connection, account) == {}
