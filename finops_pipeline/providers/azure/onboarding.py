"""Onboarding an Azure subscription: checking the input, building its credentials, and what
the customer must grant.

This module is pure: no Dagster, no database, no network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.azure.client import AzureEndpoints
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.errors import ADVISOR_READER_ROLE, COST_MANAGEMENT_READER_ROLE
from finops_pipeline.providers.azure.query import CostScope
from finops_pipeline.providers.base import AccountOnboarding, OnboardedAccount, SecretReader
from finops_pipeline.security.credentials import Secret

#: Where the client secret is read from; it is never accepted on the command line.
CLIENT_SECRET_ENV = "FINOPS_AZURE_CLIENT_SECRET"


def build_azure_credentials(
    *,
    subscription_id: str,
    tenant_id: str | None,
    client_id: str | None,
    client_secret: Secret | None,
    endpoint_url: str | None = None,
    authority_host: str | None = None,
) -> AzureClientSecretCredentials:
    """Check the onboarding input and build the credentials.

    Raises:
        ConfigurationError: A missing or malformed id, no secret, or an endpoint that is not
            a bare https URL. Nothing names the secret's value.
    """
    CostScope.subscription(subscription_id)  # a GUID, or a typed one-line error
    if not tenant_id or not client_id:
        raise ConfigurationError(
            "An Azure subscription needs --azure-tenant-id and --client-id: the Entra tenant "
            "and the app registration (Entra admin center > App registrations > Overview)."
        )
    if client_secret is None or not client_secret:
        raise ConfigurationError(
            f"No client secret given. Set {CLIENT_SECRET_ENV} or pipe it to --secret-stdin; "
            "it is never accepted on the command line."
        )
    # Both must be bare https URLs; a custom authority is kept with the credentials.
    endpoints = AzureEndpoints(
        resource_manager=endpoint_url or AzureEndpoints().resource_manager,
        authority_host=authority_host or AzureEndpoints().authority_host,
    )
    return AzureClientSecretCredentials(
        tenant_id=tenant_id.strip().lower(),
        client_id=client_id.strip().lower(),
        client_secret=client_secret,
        authority_host=endpoints.authority_host if endpoints.custom_authority else None,
    )


def normalised_subscription_id(subscription_id: str) -> str:
    """The subscription id as stored: lower case, no spaces."""
    return CostScope.subscription(subscription_id).identifier


def role_assignment_lines(*, subscription_id: str, client_id: str) -> list[str]:
    """What the customer must grant, as lines to print after ``accounts add``."""
    scope = CostScope.subscription(subscription_id).path
    return [
        f"Grant the app the {COST_MANAGEMENT_READER_ROLE} role on the subscription (read-only "
        "access to its costs, nothing else):",
        f'  az role assignment create --assignee {client_id} --role "{COST_MANAGEMENT_READER_ROLE}"'
        f" --scope {scope}",
        f"  (or Azure portal > Subscriptions > Access control (IAM) > Add role assignment > "
        f"{COST_MANAGEMENT_READER_ROLE})",
        f"For Advisor's cost recommendations (the weekly cost_recommendations refresh), also "
        f"grant {ADVISOR_READER_ROLE}:",
        f'  az role assignment create --assignee {client_id} --role "{ADVISOR_READER_ROLE}"'
        f" --scope {scope}",
        "Then run `finops accounts validate` to check a token and a one-day query.",
    ]


# --- the registry's onboarding hooks (``providers.base.AccountOnboarding``) -------------------


def build_credentials(
    *,
    provider_account_id: str,
    external_id: str | None,
    azure_tenant_id: str | None = None,
    client_id: str | None = None,
    client_secret: Secret | None = None,
    authority_host: str | None = None,
    resource_manager_url: str | None = None,
) -> AzureClientSecretCredentials:
    """``accounts add``'s inputs as credentials; the account number is the subscription id.

    ``azure_tenant_id`` is the Entra tenant (``tenant_id`` names ours). ``resource_manager_url``
    is the account's ``--endpoint-url``, checked here with the authority host (both https); it
    is stored on the account row, not in the credentials.
    """
    return build_azure_credentials(
        subscription_id=provider_account_id,
        tenant_id=azure_tenant_id,
        client_id=client_id,
        client_secret=client_secret,
        endpoint_url=resource_manager_url,
        authority_host=authority_host,
    )


def uses_tenant_external_id(inputs: Mapping[str, Any]) -> bool:
    """Azure apps prove themselves with their secret; no external id is involved."""
    return False


def inputs_from_options(
    options: Mapping[str, Any], read_secret: SecretReader, note: Callable[[str], None]
) -> dict[str, Any]:
    """``accounts add``'s Azure options as :func:`build_credentials` inputs; the client secret
    comes from ``FINOPS_AZURE_CLIENT_SECRET`` or ``--secret-stdin``, never argv."""
    return {
        "azure_tenant_id": options.get("azure_tenant_id"),
        "client_id": options.get("client_id"),
        "client_secret": read_secret(CLIENT_SECRET_ENV, bool(options.get("secret_stdin"))),
        "authority_host": options.get("authority_host"),
        "resource_manager_url": options.get("endpoint_url"),
    }


def onboarding_text(added: OnboardedAccount, options: Mapping[str, Any]) -> str | None:
    """The role assignment the customer must grant on the subscription."""
    subscription_id = str(options.get("account_number") or "")
    client_id = str(options.get("client_id") or "")
    if not subscription_id or not client_id:
        return None
    lines = role_assignment_lines(subscription_id=subscription_id, client_id=client_id.lower())
    lines[-1] = f"Then run: finops accounts validate {added.account_id}"
    return "\n" + "\n".join(lines) + "\n"


AZURE_ONBOARDING = AccountOnboarding(
    build_credentials=build_credentials,
    uses_tenant_external_id=uses_tenant_external_id,
    inputs_from_options=inputs_from_options,
    onboarding_text=onboarding_text,
)
