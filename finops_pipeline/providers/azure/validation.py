"""Proving an Azure subscription's credentials work for cost collection, before relying on them.

First a Resource Manager token from Entra ID, which proves the tenant, client id and secret
(and costs no quota). Then a one-day ``ActualCost`` query on the subscription, which proves the
app holds Cost Management Reader there; it consumes query processing units (QPU) of the
tenant's quota, which are counted and reported. Queries are not billed.

This module is pure: no Dagster, no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.azure.client import (
    PUBLIC_AUTHORITY_HOST,
    PUBLIC_RESOURCE_MANAGER,
    AzureEndpoints,
    ClientOptions,
    CostManagementQueryClient,
)
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.parsing import parse_query_page
from finops_pipeline.providers.azure.query import (
    CostScope,
    CostType,
    build_query_body,
    encode_query_body,
)
from finops_pipeline.providers.base import ClientHook, ValidationReport
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange

if TYPE_CHECKING:
    from finops_pipeline.db.accounts import CloudAccount

QPU = "QPU"


def validate_account(
    account: CloudAccount,
    credentials: Credentials,
    endpoints: Mapping[str, str | None],
    *,
    client_hook: ClientHook | None = None,
    today: dt.date | None = None,
    **_options: Any,
) -> ValidationReport:
    """The registry's validation probe for Azure subscriptions (``providers.base.AccountValidator``).

    The account's own Resource Manager endpoint and its credentials' authority host win over the
    public cloud; the configured overrides (``endpoints``) are AWS's and do not apply.
    """
    report = ValidationReport(account_id=account.id)
    if not isinstance(credentials, AzureClientSecretCredentials):
        report.add(
            "credential_kind",
            False,
            f"the account stores {credentials.kind} credentials; an Azure subscription needs "
            "an app registration's client secret",
        )
        return report
    try:
        resolved = AzureEndpoints(
            resource_manager=account.endpoint_url or PUBLIC_RESOURCE_MANAGER,
            authority_host=credentials.authority_host or PUBLIC_AUTHORITY_HOST,
        )
    except FinopsError as error:
        report.add("endpoints", False, f"{type(error).__name__}: {error}")
        return report
    return probe_subscription(
        report,
        subscription_id=account.provider_account_id,
        credentials=credentials,
        endpoints=resolved,
        today=today,
        client_hook=client_hook,
    )


def probe_subscription(
    report: ValidationReport,
    *,
    subscription_id: str,
    credentials: AzureClientSecretCredentials,
    endpoints: AzureEndpoints,
    today: dt.date | None = None,
    client_hook: ClientHook | None = None,
) -> ValidationReport:
    """A token, then a one-day query probe on the subscription; both recorded in ``report``.

    Args:
        report: Where the checks go.
        subscription_id: The subscription the account was registered with.
        credentials: The decrypted credentials.
        endpoints: Resource Manager and the Entra authority.
        today: The UTC date (for tests); the probe asks for the day before.
        client_hook: The registry's Azure hook (binds the sandbox for its endpoint).
    """
    client: CostManagementQueryClient | None = None
    try:
        scope = CostScope.subscription(subscription_id)
        options = ClientOptions()
        if client_hook is not None:
            client_hook(options, endpoints.resource_manager)
        client = CostManagementQueryClient(credentials, endpoints, options)
        client.check_token(scope)
        report.add(
            "token",
            True,
            f"Entra ID issued a Resource Manager token to app {credentials.client_id} in "
            f"tenant {credentials.tenant_id} (proves the secret, not the role)",
        )
        yesterday = (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=1)
        body = encode_query_body(build_query_body(CostType.ACTUAL, DateRange(yesterday, yesterday)))
        try:
            response = client.first_page(scope, body)
        finally:
            report.quota_consumed = str(client.meter.qpu_consumed)
            report.quota_unit = QPU
        page = parse_query_page(response.text, status=response.status)
        report.add(
            "cost_query",
            True,
            f"a one-day Cost Management query on {scope.path} answered {response.status} with "
            f"{len(page.rows)} rows, consuming {report.quota_consumed} QPU of the tenant's quota "
            "(queries are not billed)",
        )
    except FinopsError as error:
        report.add("error", False, f"{type(error).__name__}: {error}")
    finally:
        if client is not None:
            client.close()
    return report
