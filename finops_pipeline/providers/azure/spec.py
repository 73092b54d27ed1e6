"""Azure's entry in the provider registry."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from finops_pipeline.constants import PROVIDER_AZURE
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.onboarding import AZURE_ONBOARDING
from finops_pipeline.providers.azure.validation import validate_account
from finops_pipeline.providers.base import ProviderSandbox, ProviderSpec, SandboxAccount
from finops_pipeline.sync.windows import first_of_month

#: The sandbox's reserved Resource Manager host; kept here so this module never imports it.
SANDBOX_RESOURCE_MANAGER_HOST = "management.azure-sandbox.finops.invalid"
SANDBOX_AUTHORITY_HOST_NAME = "login.azure-sandbox.finops.invalid"


def is_sandbox_endpoint(resource_manager: str | None) -> bool:
    """Whether a Resource Manager URL names the sandbox's reserved host."""
    if not resource_manager:
        return False
    return (urlsplit(resource_manager).hostname or "").lower() == SANDBOX_RESOURCE_MANAGER_HOST


def attach_sandbox_to_sandbox_endpoint(options: Any, resource_manager: str | None) -> None:
    """Serve sandbox subscriptions in-process; every other client talks to Azure as built.

    azure-core fixes a client's transport when it is built, so this hook receives the
    client's ``ClientOptions`` before the client exists. For the sandbox's reserved
    ``.invalid`` host it sets the transport to the synthetic tenant; azure-identity, the Cost
    Management client and every pipeline policy still run unchanged above it.
    """
    if is_sandbox_endpoint(resource_manager):
        from finops_pipeline.providers.azure.sandbox.hook import attach_sandbox

        attach_sandbox(options)


def demo_accounts() -> tuple[SandboxAccount, ...]:
    """Each sandbox tenant's readable subscriptions; the demo tenant is named after the Entra
    tenant. Subscriptions without the reader role stay in the sandbox to show a 403."""
    from finops_pipeline.providers.azure.sandbox import DEFAULT_TENANTS, sandbox_credentials

    return tuple(
        SandboxAccount(
            tenant.name,
            subscription.name,
            subscription.subscription_id,
            sandbox_credentials(tenant),
        )
        for tenant in DEFAULT_TENANTS
        for subscription in tenant.subscriptions
        if subscription.reader
    )


def daily_history_start(today: dt.date) -> dt.date:
    """Cost Management answers daily queries up to 36 months back (37 months is refused)."""
    return first_of_month(today, 36)


SANDBOX = ProviderSandbox(
    endpoint_url=f"https://{SANDBOX_RESOURCE_MANAGER_HOST}",
    is_sandbox_endpoint=is_sandbox_endpoint,
    demo_accounts=demo_accounts,
    daily_history_start=daily_history_start,
    history_note="Azure Cost Management answers daily queries up to 36 months back.",
    # The Azure sandbox reads the AWS sandbox's pull generation, so the clouds restate together.
    start_pull=None,
)

AZURE = ProviderSpec(
    name=PROVIDER_AZURE,
    display_name="Azure Cost Management",
    credential_classes=(AzureClientSecretCredentials,),
    resource_key="azure_cost_management",
    client_hook=attach_sandbox_to_sandbox_endpoint,
    onboarding=AZURE_ONBOARDING,
    validate=validate_account,
    sandbox=SANDBOX,
)
