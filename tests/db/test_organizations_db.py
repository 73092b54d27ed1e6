"""Payer and member accounts in the database: the FOCUS view bills members to their payer,
a dashboard may read the links, and removing a payer removes its members' credentials."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from finops_pipeline.cli.onboarding import remove_account
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.organizations import payers_of
from finops_pipeline.db.tenants import tenant_transaction
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from tests.cost_rows import insert_cost
from tests.db.test_focus_view import dashboard  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

DAY = dt.date(2025, 3, 31)
KEYS = AwsAccessKeyCredentials(access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("s"))


def organisation(connection: psycopg.Connection, ring: KeyRing) -> tuple[str, str, str]:
    """A payer, one member linked to it, and a standalone account, each with one cost row."""
    ids = []
    for number, name, payer in (
        ("111111111111", "acme payer", None),
        ("222222222222", "acme member", "payer"),
        ("333333333333", "acme standalone", None),
    ):
        account = register_account(
            connection,
            ring,
            tenant_id="tenant-a",
            name=name,
            provider="aws",
            provider_account_id=number,
            credentials=KEYS,
            management_account=payer is None and number == "111111111111",
            payer_account_id=ids[0] if payer else None,
        )
        insert_cost(connection, "tenant-a", account, DAY, "AWS Lambda", "Request", "1")
        ids.append(account)
    return ids[0], ids[1], ids[2]


def test_the_focus_view_bills_a_member_to_its_payer(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    dashboard: psycopg.Connection,  # noqa: F811
) -> None:
    payer, member, standalone = organisation(connection, key_ring)
    assert payers_of(connection, [payer, member, standalone]) == {payer: payer, member: payer}
    with tenant_transaction(dashboard, "tenant-a"):
        rows = dashboard.execute(
            'SELECT "x_CloudAccountId"::text, "BillingAccountId", "BillingAccountName", '
            '"SubAccountId", "SubAccountName" FROM cost_data_focus ORDER BY "SubAccountId"'
        ).fetchall()
        links = dashboard.execute(
            "SELECT name, management_account, payer_account_id::text FROM cloud_accounts "
            "ORDER BY provider_account_id"
        ).fetchall()
    assert rows == [
        (payer, "111111111111", "acme payer", "111111111111", "acme payer"),
        (member, "111111111111", "acme payer", "222222222222", "acme member"),
        (standalone, "333333333333", "acme standalone", "333333333333", "acme standalone"),
    ]
    assert links == [
        ("acme payer", True, None),
        ("acme member", False, payer),
        ("acme standalone", False, None),
    ]


def test_removing_a_payer_removes_its_members_but_keeps_their_history(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    payer, _member, standalone = organisation(connection, key_ring)
    remove_account(connection, payer)
    remaining = connection.execute("SELECT id::text FROM cloud_accounts").fetchall()
    assert remaining == [(standalone,)]
    assert connection.execute("SELECT count(*) FROM cost_data").fetchone() == (3,)
    # A member cannot itself be a payer.
    with pytest.raises(psycopg.errors.CheckViolation):
        connection.execute(
            "UPDATE cloud_accounts SET management_account = true, payer_account_id = id"
        )
