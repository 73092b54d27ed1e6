"""GCP's entry in the provider registry."""

from __future__ import annotations

from typing import Any

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.providers.base import ProviderSpec
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.onboarding import GCP_ONBOARDING
from finops_pipeline.providers.gcp.validation import validate_account


def attach_sandbox_to_sandbox_endpoint(client: Any, api_endpoint: str | None) -> None:
    """Serve sandbox exports from this process's BigQuery double; others talk to Google.

    Sandbox exports (finops demo) name a reserved ``.invalid`` host; the sandbox module is
    imported only when one is used, so production clients never load it.
    """
    if not api_endpoint or ".invalid" not in api_endpoint:
        return
    from finops_pipeline.providers.gcp.sandbox.hook import attach_sandbox, is_sandbox_endpoint

    if is_sandbox_endpoint(api_endpoint):
        attach_sandbox(client)


GCP = ProviderSpec(
    name=PROVIDER_GCP,
    display_name="GCP Cloud Billing export (BigQuery)",
    credential_classes=(GcpServiceAccountCredentials,),
    resource_key="gcp_billing_export",
    client_hook=attach_sandbox_to_sandbox_endpoint,
    onboarding=GCP_ONBOARDING,
    validate=validate_account,
    # BigQuery bills bytes scanned, not requests: see the gcp_bytes_* metadata.
    paid_api="BigQuery",
    price_per_request_usd="0.00",
)
