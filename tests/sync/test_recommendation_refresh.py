"""Refreshing recommendations account by account: the request meter hook, unsupported clouds."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from finops_pipeline.db.accounts import CloudAccount, register_account
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.aws.sandbox import SANDBOX_ENDPOINT_URL, sandbox_credentials
from finops_pipeline.providers.aws.sandbox.hook import ENV_AS_OF
from finops_pipeline.resources import AwsCostExplorerResource, CredentialDecryptor
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.recommendation_refresh import refresh_accounts

pytestmark = pytest.mark.integration


class BudgetExhaustedError(ConfigurationError):
    """What a per-tenant budget would raise."""


class TenantBudget:
    """A request budget per tenant, as the meter hook lets one be plugged in."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = limits
        self.spent: dict[str, int] = {}

    def allow(self, account: CloudAccount) -> None:
        if self.spent.get(account.tenant_id, 0) >= self.limits.get(account.tenant_id, 0):
            raise BudgetExhaustedError(f"Tenant {account.tenant_id}'s request budget is spent.")

    def record(self, account: CloudAccount, paid_requests: int) -> None:
        self.spent[account.tenant_id] = self.spent.get(account.tenant_id, 0) + paid_requests


def add(connection: psycopg.Connection, ring: KeyRing, tenant: str, number: str) -> str:
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=f"{tenant} {number}",
        provider="aws",
        provider_account_id=number,
        credentials=sandbox_credentials(number),
        endpoint_url=SANDBOX_ENDPOINT_URL,
    )


def test_a_request_budget_hooks_in_per_account_and_tenant(
    connection: psycopg.Connection,
    key_ring: KeyRing,
    encryption_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_AS_OF, dt.date(2026, 6, 1).isoformat())
    first = add(connection, key_ring, "globex", "320000000001")
    second = add(connection, key_ring, "globex", "320000000002")
    other = add(connection, key_ring, "initech", "430000000001")
    # Globex may spend 2 requests: its first account's refresh spends them.
    budget = TenantBudget({"globex": 2, "initech": 10})
    aws = AwsCostExplorerResource()
    report = refresh_accounts(
        [first, second, other],
        connection=connection,
        decrypt=CredentialDecryptor(encryption_key=encryption_key).decrypt_credentials,
        collectors={aws.provider: aws},
        meter=budget,
    )
    assert report.paid_requests_by_account() == {first: 2, other: 2}
    assert budget.spent == {"globex": 2, "initech": 2}
    assert [(f.account_id, f.error_type, f.permanent) for f in report.failures] == [
        (second, "BudgetExhaustedError", True)
    ]
    stored = dict(
        connection.execute(
            "SELECT cloud_account_id::text, count(*) FROM cost_recommendations GROUP BY 1"
        ).fetchall()
    )
    assert set(stored) == {first, other}


def test_accounts_of_a_cloud_without_a_recommender_are_skipped(
    connection: psycopg.Connection, key_ring: KeyRing, encryption_key: str
) -> None:
    from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
    from finops_pipeline.security.credentials import Secret

    azure = register_account(
        connection,
        key_ring,
        tenant_id="globex",
        name="globex azure",
        provider="azure",
        provider_account_id="00000000-0000-0000-0000-000000000001",
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("not-used")
        ),
    )
    aws = AwsCostExplorerResource()
    report = refresh_accounts(
        [azure],
        connection=connection,
        decrypt=CredentialDecryptor(encryption_key=encryption_key).decrypt_credentials,
        collectors={aws.provider: aws},
    )
    assert (report.skipped, report.failures, report.refreshed) == ([azure], [], [])
