"""The demo's tenant summary: totals and top services per tenant and currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg

from finops_pipeline.db.reports import tenant_summaries
from finops_pipeline.security.ciphertext import KeyRing
from tests.cost_rows import add_account

DAY = dt.date(2026, 11, 2)


def _cost(
    connection: psycopg.Connection, account: str, service: str, amount: str, cur: str
) -> None:
    connection.execute(
        "INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service, usage_type,"
        " unblended_cost, amortized_cost, net_unblended_cost, usage_quantity, currency)"
        " VALUES ('tenant-a', %s, %s, 'aws', %s, 'usage', %s, %s, %s, 1, %s)",
        (account, DAY, service, amount, amount, amount, cur),
    )


def test_a_tenant_billed_in_two_currencies_gets_each_currency_s_own_top_services(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    usd = add_account(connection, key_ring, "tenant-a", "123456789012")
    eur = add_account(connection, key_ring, "tenant-a", "123456789013")
    _cost(connection, usd, "Compute", "900.00", "USD")
    _cost(connection, usd, "Storage", "100.00", "USD")
    _cost(connection, eur, "Database", "50.00", "EUR")

    summaries = tenant_summaries(connection, [usd, eur], DAY, DAY, top=3)

    by_currency = {summary.currency: summary for summary in summaries}
    assert by_currency["USD"].unblended_cost == Decimal("1000.00")
    assert by_currency["USD"].top_services == [
        ("Compute", Decimal("900.00")),
        ("Storage", Decimal("100.00")),
    ]
    assert by_currency["EUR"].unblended_cost == Decimal("50.00")
    assert by_currency["EUR"].top_services == [("Database", Decimal("50.00"))]
