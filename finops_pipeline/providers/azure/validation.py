"""Proving an Azure subscription's credentials work for cost collection, before relying on them.

First a Resource Manager token from Entra ID, which proves the tenant, client id and secret
(and costs no quota). Then a one-day ``ActualCost`` query on the subscription, which proves the
app holds Cost Management Reader there; it consumes query processing units (QPU) of the
tenant's quota, which are counted and reported. Queries are not billed.

This module is pure: no Dagster, no database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers.azure.client import (
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
from finops_pipeline.providers.base import ClientHook
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange


@dataclass(frozen=True)
class Check:
    """One validation step and its outcome; ``detail`` is safe to show."""

    name: str
    ok: bool
    detail: str


@dataclass
class AzureValidationReport:
    """Everything validation found out about one subscription."""

    account_id: str
    checks: list[Check] = field(default_factory=list)
    #: Resource Manager requests the probe made (not billed), and the QPU they consumed.
    requests: int = 0
    qpu_consumed: Decimal = Decimal(0)
    #: Query requests are free; kept so every provider's report has the field.
    paid_requests: int = 0

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record a check."""
        self.checks.append(Check(name, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "account_id": self.account_id,
            "ok": self.ok,
            "requests": self.requests,
            "qpu_consumed": str(self.qpu_consumed),
            "paid_requests": self.paid_requests,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def validate_azure_account(
    *,
    account_id: str,
    subscription_id: str,
    credentials: Credentials,
    endpoints: AzureEndpoints,
    today: dt.date | None = None,
    client_hook: ClientHook | None = None,
) -> AzureValidationReport:
    """A token, then a one-day query probe on the subscription.

    Args:
        account_id: Our account id, for the report.
        subscription_id: The subscription the account was registered with.
        credentials: The decrypted credentials.
        endpoints: Resource Manager and the Entra authority (the account's, or public).
        today: The UTC date (for tests); the probe asks for the day before.
        client_hook: The registry's Azure hook (binds the sandbox for its endpoint).

    Returns:
        The report; ``report.ok`` says whether the subscription can be collected.
    """
    report = AzureValidationReport(account_id=account_id)
    if not isinstance(credentials, AzureClientSecretCredentials):
        report.add(
            "credential_kind",
            False,
            f"the account stores {credentials.kind} credentials; an Azure subscription needs "
            "an app registration's client secret",
        )
        return report
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
            report.requests = client.meter.requests
            report.qpu_consumed = client.meter.qpu_consumed
        page = parse_query_page(response.text, status=response.status)
        report.add(
            "cost_query",
            True,
            f"a one-day Cost Management query on {scope.path} answered {response.status} with "
            f"{len(page.rows)} rows, consuming {report.qpu_consumed} QPU of the tenant's quota",
        )
    except FinopsError as error:
        report.add("error", False, f"{type(error).__name__}: {error}")
    finally:
        if client is not None:
            client.close()
    return report
