"""The paid-request budget's reservation holds across concurrent connections; the new tenant
tables are under row-level security."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from finops_pipeline.db.request_budget import (
    budget_statuses,
    record_requests,
    reserve_requests,
    set_budget,
)
from finops_pipeline.db.tenants import tenant_transaction
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.errors import RequestBudgetExceededError
from tests.db.test_focus_view import dashboard  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def test_two_processes_cannot_both_take_the_last_requests(
    connection: psycopg.Connection, database_url: str
) -> None:
    set_budget(connection, "tenant-a", 5)
    accounts = [str(uuid.uuid4()) for _ in range(4)]
    barrier = threading.Barrier(len(accounts))
    outcomes: list[str] = []
    reserved: list[str] = []

    def reserve(account: str) -> None:
        with psycopg.connect(to_libpq_url(database_url), autocommit=True) as own:
            barrier.wait()
            try:
                reserve_requests(own, "tenant-a", {(account, "aws"): 2})
                outcomes.append("reserved")
                reserved.append(account)
            except RequestBudgetExceededError:
                outcomes.append("refused")

    threads = [threading.Thread(target=reserve, args=(account,)) for account in accounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "refused", "reserved", "reserved"]
    assert budget_statuses(connection)["tenant-a"].used == 4
    # A reservation given back is never counted below zero.
    record_requests(connection, "tenant-a", reserved[0], "aws", -10)
    assert budget_statuses(connection)["tenant-a"].used == 2


def test_the_new_tenant_tables_are_under_row_level_security(
    connection: psycopg.Connection,
    dashboard: psycopg.Connection,  # noqa: F811
) -> None:
    for tenant in ("tenant-a", "tenant-b"):
        account = str(uuid.uuid4())
        reserve_requests(connection, tenant, {(account, "aws"): 3})
        set_budget(connection, tenant, 10)
        connection.execute(
            "INSERT INTO cost_provider_totals (tenant_id, cloud_account_id, provider, date, "
            "currency, unblended_cost) VALUES (%s, %s, 'aws', '2026-01-01', 'USD', 1)",
            (tenant, account),
        )
    with tenant_transaction(dashboard, "tenant-b"):
        for table in ("paid_request_usage", "tenant_request_budgets", "cost_provider_totals"):
            seen = dashboard.execute(f"SELECT DISTINCT tenant_id FROM {table}").fetchall()
            assert seen == [("tenant-b",)], table
    with (
        tenant_transaction(dashboard, "tenant-b"),
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        dashboard.execute("UPDATE tenant_request_budgets SET monthly_limit = 1000000")
    assert dashboard.execute("SELECT count(*) FROM paid_request_usage").fetchone() == (0,)
