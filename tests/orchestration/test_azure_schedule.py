"""The daily schedule plans each account's window by its provider, evaluated for real."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import first_of_month
from tests.azure_sandbox import PRODUCTION, add_azure_subscription
from tests.cli_sandbox import add_sandbox_account
from tests.orchestration.test_orchestration import evaluate_schedule, six_am, windows
from tests.sync.test_mixed_providers import run_range

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(dt.UTC).date()


def test_azure_accounts_re_read_open_months_while_aws_keeps_its_trailing_days(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    monkeypatch.delenv("FINOPS_SANDBOX_AS_OF", raising=False)
    aws = add_sandbox_account(database_url, key_ring, "320000000001", tenant="globex")
    azure = add_azure_subscription(connection, key_ring, PRODUCTION)
    # A day of a month in the past, so the previous month's rows are in the table or not.
    month = first_of_month(TODAY, 2)
    previous = first_of_month(TODAY, 3)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [aws, azure])

        def planned(day: int) -> dict[str, DateRange]:
            when = six_am(month + dt.timedelta(days=day - 1))
            return windows(evaluate_schedule(instance, database_url, when))

        def day(n: int) -> dt.date:
            return month + dt.timedelta(days=n - 1)

        # Mid-month: AWS reads 3 days, Azure the month so far.
        assert planned(20) == {
            aws: DateRange(day(17), day(19)),
            azure: DateRange(month, day(19)),
        }
        # Until the close day Azure also re-reads the previous month.
        assert planned(4)[azure] == DateRange(previous, day(3))
        # After it, a previous month never read (no estimated rows) is not re-read...
        assert planned(7)[azure] == DateRange(month, day(6))
        # ...but one whose rows are still estimated is read once more, to become final.
        loaded = run_range(
            database_url,
            encryption_key,
            [azure],
            instance,
            DateRange(month - dt.timedelta(days=2), month - dt.timedelta(days=1)),
        )
        assert loaded.success
        assert connection.execute(
            "SELECT bool_and(is_estimated) FROM cost_data WHERE cloud_account_id = %s", (azure,)
        ).fetchone() == (False,)  # read long after its month closed: final
        connection.execute(
            "UPDATE cost_data SET is_estimated = true WHERE cloud_account_id = %s", (azure,)
        )
        assert planned(7)[azure] == DateRange(previous, day(6))
        assert planned(7)[aws] == DateRange(day(4), day(6))
