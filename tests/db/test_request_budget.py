"""The paid-request budget's reservation holds across concurrent connections."""

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
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.errors import RequestBudgetExceededError

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
