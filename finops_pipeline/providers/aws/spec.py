"""AWS's entry in the provider registry."""

from __future__ import annotations

from typing import Any

from finops_pipeline.constants import PROVIDER_AWS
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials, AwsRoleCredentials
from finops_pipeline.providers.aws.errors import typed_aws_error
from finops_pipeline.providers.aws.onboarding import AWS_ONBOARDING
from finops_pipeline.providers.aws.sandbox.catalogue import DEMO_TENANTS
from finops_pipeline.providers.aws.sandbox.hook import (
    SANDBOX_ENDPOINT_URL,
    advance_generation,
    attach_sandbox,
    is_sandbox_endpoint,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.sandbox.service import history_start
from finops_pipeline.providers.aws.validation import validate_account
from finops_pipeline.providers.base import ProviderSandbox, ProviderSpec, SandboxAccount


def attach_sandbox_to_sandbox_endpoint(client: Any, endpoint_url: str | None) -> None:
    """Serve sandbox accounts in-process; every other client talks to AWS as built.

    Sandbox accounts (finops demo, tests, benchmarks) point at a reserved ``.invalid`` host.
    The request is still built, serialised and signed by botocore; only the HTTP send is
    answered from the synthetic organisation.
    """
    if endpoint_url and is_sandbox_endpoint(endpoint_url):
        attach_sandbox(client)


def demo_accounts() -> tuple[SandboxAccount, ...]:
    """The demo organisation's accounts (``sandbox.catalogue.DEMO_TENANTS``)."""
    return tuple(
        SandboxAccount(
            tenant.tenant_id, account.name, account.number, sandbox_credentials(account.number)
        )
        for tenant in DEMO_TENANTS
        for account in tenant.accounts
    )


SANDBOX = ProviderSandbox(
    endpoint_url=SANDBOX_ENDPOINT_URL,
    is_sandbox_endpoint=is_sandbox_endpoint,
    demo_accounts=demo_accounts,
    daily_history_start=history_start,
    history_note="Cost Explorer keeps daily data for the current month and the previous 13.",
    start_pull=advance_generation,
)

AWS = ProviderSpec(
    name=PROVIDER_AWS,
    display_name="AWS Cost Explorer",
    credential_classes=(AwsAccessKeyCredentials, AwsRoleCredentials),
    resource_key="aws_cost_explorer",
    client_hook=attach_sandbox_to_sandbox_endpoint,
    onboarding=AWS_ONBOARDING,
    validate=validate_account,
    paid_api="Cost Explorer",
    price_per_request_usd=CE_PRICE_PER_REQUEST_USD,
    translate_error=typed_aws_error,
    sandbox=SANDBOX,
)
