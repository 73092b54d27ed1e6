"""AWS's entry in the provider registry."""

from __future__ import annotations

from typing import Any

from finops_pipeline.constants import PROVIDER_AWS
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials, AwsRoleCredentials
from finops_pipeline.providers.aws.onboarding import AWS_ONBOARDING
from finops_pipeline.providers.aws.sandbox.hook import attach_sandbox, is_sandbox_endpoint
from finops_pipeline.providers.aws.validation import validate_account
from finops_pipeline.providers.base import ProviderSpec


def attach_sandbox_to_sandbox_endpoint(client: Any, endpoint_url: str | None) -> None:
    """Serve sandbox accounts in-process; every other client talks to AWS as built.

    Sandbox accounts (finops demo, tests, benchmarks) point at a reserved ``.invalid`` host.
    The request is still built, serialised and signed by botocore; only the HTTP send is
    answered from the synthetic organisation.
    """
    if endpoint_url and is_sandbox_endpoint(endpoint_url):
        attach_sandbox(client)


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
)
