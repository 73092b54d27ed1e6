"""cost_recommendations on real Postgres: refreshes replace and resolve, tenants stay apart."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import psycopg
import pytest

from finops_pipeline.db.accounts import get_account, register_account
from finops_pipeline.db.recommendations import (
    open_savings_by_currency,
    refresh_recommendations,
    top_recommendations,
)
from finops_pipeline.db.tenants import REPORTING_ROLE, tenant_transaction
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.insights.recommendations import KIND_RIGHTSIZE, Recommendation
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret

pytestmark = pytest.mark.integration

NUMBER = "123456789012"
WEEK_1 = dt.datetime(2026, 6, 1, 6, tzinfo=dt.UTC)
WEEK_2 = dt.datetime(2026, 6, 8, 6, tzinfo=dt.UTC)
WEEK_3 = dt.datetime(2026, 6, 15, 6, tzinfo=dt.UTC)


def add_account(connection: psycopg.Connection, ring: KeyRing, tenant: str) -> str:
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=f"{tenant} prod",
        provider="aws",
        provider_account_id=NUMBER,
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("s3cr3t-" + tenant)
        ),
    )


def rec(resource: str, savings: str = "10.00", **changes: object) -> Recommendation:
    base = Recommendation(
        provider="aws",
        account=NUMBER,
        source="rightsizing",
        kind=KIND_RIGHTSIZE,
        resource_id=resource,
        current="m5.xlarge, US East (N. Virginia)",
        recommended="m5.large",
        estimated_monthly_savings=Decimal(savings),
        currency="USD",
        raw={"CurrentInstance": {"ResourceId": resource, "MonthlyCost": "140.160"}},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def stored(connection: psycopg.Connection) -> dict[str, tuple]:
    rows = connection.execute(
        "SELECT resource, monthly_savings, first_seen, last_seen, resolved_at, raw, run_id "
        "FROM cost_recommendations ORDER BY resource"
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_refresh_replaces_the_set_and_resolves_what_disappeared(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    account = get_account(connection, add_account(connection, key_ring, "tenant-a"))

    plan = refresh_recommendations(
        connection, account, "aws", [rec("i-a"), rec("i-b", "25.50")], seen_at=WEEK_1, run_id="r1"
    )
    assert plan.counts()["new"] == 2
    first = stored(connection)
    assert first["i-b"][:4] == (Decimal("25.50"), WEEK_1, WEEK_1, None)
    # The provider's payload is kept as JSONB beside the normalised columns.
    assert first["i-a"][4] == {"CurrentInstance": {"ResourceId": "i-a", "MonthlyCost": "140.160"}}

    # Week 2: i-a's savings move, i-b is gone, i-c is new.
    plan = refresh_recommendations(
        connection,
        account,
        "aws",
        [rec("i-a", "12.00"), rec("i-c", "3.00")],
        seen_at=WEEK_2,
        run_id="r2",
    )
    assert plan.counts() == {"new": 1, "updated": 1, "unchanged": 0, "reopened": 0, "resolved": 1}
    second = stored(connection)
    assert second["i-a"][:4] == (Decimal("12.00"), WEEK_1, WEEK_2, None)
    # Resolved, not deleted; last seen stays at the refresh that last returned it.
    assert second["i-b"][:4] == (Decimal("25.50"), WEEK_1, WEEK_1, WEEK_2)
    assert second["i-c"][:4] == (Decimal("3.00"), WEEK_2, WEEK_2, None)

    # Week 3: i-b comes back and is open again, first seen kept; re-running is idempotent.
    for _ in range(2):
        refresh_recommendations(
            connection,
            account,
            "aws",
            [rec("i-a", "12.00"), rec("i-b", "25.50"), rec("i-c", "3.00")],
            seen_at=WEEK_3,
            run_id="r3",
        )
    third = stored(connection)
    assert third["i-b"][:4] == (Decimal("25.50"), WEEK_1, WEEK_3, None)
    assert connection.execute("SELECT count(*) FROM cost_recommendations").fetchone() == (3,)

    top = top_recommendations(connection, "tenant-a", limit=2)
    assert [(r.resource, r.monthly_savings) for r in top] == [
        ("i-b", Decimal("25.50")),
        ("i-a", Decimal("12.00")),
    ]
    assert top[0].account_name == "tenant-a prod"
    assert open_savings_by_currency(connection, "tenant-a") == {"USD": (3, Decimal("40.50"))}


def test_a_failed_write_leaves_the_stored_set_as_it_was(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    account = get_account(connection, add_account(connection, key_ring, "tenant-a"))
    refresh_recommendations(connection, account, "aws", [rec("i-a")], seen_at=WEEK_1)
    before = stored(connection)
    # A refresh older than the stored one is refused before anything is written.
    with pytest.raises(Exception, match="older than the stored one"):
        refresh_recommendations(
            connection, account, "aws", [rec("i-z")], seen_at=WEEK_1 - dt.timedelta(days=1)
        )
    assert stored(connection) == before


def test_providers_and_tenants_are_refreshed_apart(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    a = get_account(connection, add_account(connection, key_ring, "tenant-a"))
    b = get_account(connection, add_account(connection, key_ring, "tenant-b"))
    refresh_recommendations(connection, a, "aws", [rec("i-a")], seen_at=WEEK_1)
    refresh_recommendations(connection, b, "aws", [rec("i-b")], seen_at=WEEK_1)
    # Tenant a's refresh without i-a resolves nothing of tenant b.
    refresh_recommendations(connection, a, "aws", [], seen_at=WEEK_2)
    open_rows = connection.execute(
        "SELECT tenant_id, resource FROM cost_recommendations WHERE resolved_at IS NULL"
    ).fetchall()
    assert open_rows == [("tenant-b", "i-b")]

    with connection.transaction():
        connection.execute(f"SET LOCAL ROLE {REPORTING_ROLE}")
        # The reporting role without a tenant sees nothing; with one, only that tenant.
        assert connection.execute("SELECT count(*) FROM cost_recommendations").fetchone() == (0,)
    with tenant_transaction(connection, "tenant-b"):
        connection.execute(f"SET LOCAL ROLE {REPORTING_ROLE}")
        assert connection.execute(
            "SELECT DISTINCT tenant_id FROM cost_recommendations"
        ).fetchall() == [("tenant-b",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("DELETE FROM cost_recommendations")

    with pytest.raises(ConfigurationError, match="No accounts or recommendations"):
        top_recommendations(connection, "nobody")


def test_purging_an_account_deletes_its_recommendations_and_anomalies(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    import pandas as pd

    from finops_pipeline.db.accounts import delete_account
    from finops_pipeline.db.anomalies import AccountScope, replace_anomalies

    kept = get_account(connection, add_account(connection, key_ring, "tenant-a"))
    purged = get_account(connection, add_account(connection, key_ring, "tenant-b"))
    day = dt.date(2026, 6, 1)
    spike = pd.DataFrame(
        [("EC2", "USD", day, 1.0, 90.0, 89.0, 17.8, "spike", True)],
        columns=[
            "service",
            "currency",
            "date",
            "expected",
            "actual",
            "impact",
            "score",
            "direction",
            "confirmed",
        ],
    )
    for account in (kept, purged):
        refresh_recommendations(connection, account, "aws", [rec("i-a")], seen_at=WEEK_1)
        replace_anomalies(
            connection, AccountScope(account.id, account.tenant_id), spike, start=day, end=day
        )
    delete_account(connection, kept.id)  # without --purge its insights stay
    delete_account(connection, purged.id, purge=True)
    for table in ("cost_recommendations", "cost_anomalies"):
        assert connection.execute(
            f"SELECT DISTINCT cloud_account_id::text FROM {table}"
        ).fetchall() == [(kept.id,)]
