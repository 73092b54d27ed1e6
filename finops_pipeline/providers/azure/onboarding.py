"""Onboarding an Azure subscription: checking the input, building its credentials, and what
the customer must grant.

This module is pure: no Dagster, no database, no network.
"""

from __future__ import annotations

from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.azure.client import AzureEndpoints
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.errors import COST_MANAGEMENT_READER_ROLE
from finops_pipeline.providers.azure.query import CostScope
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
        "Then run `finops accounts validate` to check a token and a one-day query.",
    ]
