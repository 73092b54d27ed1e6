"""Helpers for tests that register sandbox Azure subscriptions and run them through Dagster."""

from __future__ import annotations

import psycopg

from finops_pipeline.db.accounts import register_account
from finops_pipeline.providers.azure.sandbox import (
    DEFAULT_TENANTS,
    SANDBOX_RESOURCE_MANAGER,
    SandboxSubscription,
    SandboxTenant,
    sandbox_credentials,
)
from finops_pipeline.security.ciphertext import KeyRing

AZURE_TENANT: SandboxTenant = DEFAULT_TENANTS[0]
PRODUCTION, DEVELOPMENT, EUROPE = AZURE_TENANT.subscriptions[:3]
NO_READER: SandboxSubscription = next(s for s in AZURE_TENANT.subscriptions if not s.reader)


def add_azure_subscription(
    connection: psycopg.Connection,
    ring: KeyRing,
    subscription: SandboxSubscription,
    *,
    tenant: str = "contoso",
    tenant_app: SandboxTenant = AZURE_TENANT,
) -> str:
    """Register a sandbox subscription with its tenant app's client secret, encrypted."""
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=subscription.name,
        provider="azure",
        provider_account_id=subscription.subscription_id,
        credentials=sandbox_credentials(tenant_app),
        endpoint_url=SANDBOX_RESOURCE_MANAGER,
    )
