"""A 13-month backfill of a sandbox subscription from `finops sync`, as one range run, in the
fewest requests Cost Management allows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest

from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.providers.azure.query import PAGE_SIZE, split_query_windows
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import first_of_month
from tests.azure_sandbox import PRODUCTION, add_azure_subscription
from tests.cli_sandbox import cli_env, finops

pytestmark = pytest.mark.integration


def test_thirteen_months_of_a_subscription_are_one_range_run_of_the_minimum_requests(
    database_url: str, encryption_key: str, key_ring: KeyRing, tmp_path: Path
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    # The 13 whole months before this one: the oldest is the first day of the daily history.
    months = DateRange(first_of_month(today, 13), first_of_month(today) - dt.timedelta(days=1))
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as connection:
        account = add_azure_subscription(connection, key_ring, PRODUCTION)

    synced = finops(
        "sync",
        "--account",
        account,
        "--start",
        months.start.isoformat(),
        "--end",
        months.end.isoformat(),
        "--output",
        "json",
        env=cli_env(database_url, encryption_key, tmp_path),
    )

    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert result["success"] and len(result["run_ids"]) == 1  # one range run
    stats = result["statistics"]
    with psycopg.connect(to_libpq_url(database_url)) as connection:
        per_month = connection.execute(
            "SELECT date_trunc('month', date), count(*) FROM cost_data GROUP BY 1 ORDER BY 1"
        ).fetchall()
        days = connection.execute("SELECT count(DISTINCT date) FROM cost_data").fetchone()
    rows = sum(count for _month, count in per_month)
    assert stats["row_count"] == stats["rows_inserted"] == rows > 0
    assert days == (months.days,)
    # The minimum: Daily queries keep one month, each month is queried as ActualCost and as
    # AmortizedCost, plus its ungrouped ActualCost total for the reconciliation, and every
    # month's rows fit one page, so one request per query.
    windows = split_query_windows(months)
    assert len(windows) == len(per_month) == 13
    assert max(count for _month, count in per_month) <= PAGE_SIZE
    assert stats["azure_requests"] == 3 * len(windows) == 39
    assert stats["azure_qpu_consumed"] == 39.0
    assert stats["paid_ce_requests"] == 0
    print(
        f"13-month backfill: {stats['azure_requests']} requests (minimum {3 * len(windows)}), "
        f"{stats['azure_qpu_consumed']} QPU, {rows} rows, {stats['elapsed_seconds']} s"
    )
