"""Seeding ``cloud_accounts`` and ``cost_data`` for tests, through the production code paths.

Sandbox days go through the real normaliser and the real window loader, so the rows are what a
sync of the sandbox would have written.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import psycopg

from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.cost_loader import replace_cost_window
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.aws.sandbox.generator import Pull, SandboxGenerator
from finops_pipeline.providers.base import PARSED_COLUMNS
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.normalise import normalise_cost_rows

#: "Today" of the sandbox pulls tests make: every day before it is final (a few settle).
AS_OF = dt.date(2026, 1, 1)


def add_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    tenant_id: str,
    number: str,
    name: str | None = None,
    provider: str = "aws",
) -> str:
    """Register an access-key account (as the test's superuser); returns its id."""
    return register_account(
        connection,
        ring,
        tenant_id=tenant_id,
        name=name or f"{tenant_id} {number}",
        provider=provider,
        provider_account_id=number,
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("secret-" + number)
        ),
    )


def sandbox_parsed(number: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The sandbox's rows for ``number``'s organisation, ``start``..``end`` inclusive, parsed."""
    generator = SandboxGenerator()
    pull = Pull(as_of=AS_OF)
    records = []
    day = start
    while day <= end:
        costs = generator.organisation_day(number, day, pull)
        for row in costs.rows:
            records.append(
                (
                    day,
                    row.service,
                    row.usage_type,
                    row.unblended,
                    row.amortized,
                    row.net_unblended,
                    row.usage,
                    "USD",
                    row.unit,
                    costs.estimated,
                )
            )
        day += dt.timedelta(days=1)
    return pd.DataFrame.from_records(records, columns=list(PARSED_COLUMNS))


def load_sandbox(
    connection: psycopg.Connection,
    tenant_id: str,
    account_id: str,
    number: str,
    start: dt.date,
    end: dt.date,
) -> int:
    """Load the sandbox's window for one account with the production loader; returns rows."""
    rows = normalise_cost_rows(
        sandbox_parsed(number, start, end),
        tenant_id=tenant_id,
        cloud_account_id=account_id,
        provider="aws",
    )
    replace_cost_window(
        connection,
        rows,
        tenant_id=tenant_id,
        cloud_account_id=account_id,
        provider="aws",
        start=start,
        end_inclusive=end,
        run_id="test-run",
    )
    return len(rows)


def insert_cost(
    connection: psycopg.Connection,
    tenant_id: str,
    account_id: str,
    day: dt.date,
    service: str,
    usage_type: str,
    unblended: str,
    *,
    amortized: str | None = None,
    net_unblended: str | None = None,
    quantity: str = "0",
    unit: str | None = None,
    currency: str = "USD",
    estimated: bool = False,
    provider: str = "aws",
) -> None:
    """Insert one ``cost_data`` row directly."""
    connection.execute(
        """
        INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service, usage_type,
            unblended_cost, amortized_cost, net_unblended_cost, usage_quantity, currency,
            usage_unit, is_estimated)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (
            tenant_id,
            account_id,
            day,
            provider,
            service,
            usage_type,
            Decimal(unblended),
            Decimal(amortized if amortized is not None else unblended),
            Decimal(net_unblended if net_unblended is not None else unblended),
            Decimal(quantity),
            currency,
            unit,
            estimated,
        ),
    )


def seed_tenants(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    numbers: dict[str, tuple[str, ...]],
    start: dt.date,
    end: dt.date,
) -> None:
    """Sandbox costs from start to end for every tenant's accounts (tenant -> account numbers)."""
    for tenant, tenant_numbers in numbers.items():
        for number in tenant_numbers:
            account = add_account(connection, key_ring, tenant, number)
            load_sandbox(connection, tenant, account, number, start, end)


def rows_per_tenant(connection: psycopg.Connection, start: dt.date, end: dt.date) -> dict[str, int]:
    return dict(
        connection.execute(
            "SELECT tenant_id, count(*) FROM cost_data WHERE date BETWEEN %s AND %s GROUP BY 1",
            (start, end),
        ).fetchall()
    )
