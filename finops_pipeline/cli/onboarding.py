"""Onboarding cloud accounts: add, list, validate, disable, remove.

The Python API behind ``finops accounts``, for every registered provider: each provider's
:class:`~finops_pipeline.providers.base.AccountOnboarding` checks its input and builds its
credentials, and its ``validate`` probe proves them. Secrets arrive as :class:`Secret` values and
leave only encrypted; nothing here logs or returns them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import psycopg

from finops_pipeline.db.accounts import (
    CloudAccount,
    RemovedAccount,
    delete_account,
    find_account_id,
    get_account,
    list_accounts,
    register_account,
    set_account_status,
)
from finops_pipeline.db.organizations import find_member_id, take_over_member
from finops_pipeline.db.request_budget import UNIT_QPU, account_requests
from finops_pipeline.db.tenants import check_tenant_id, ensure_tenant
from finops_pipeline.errors import ConfigurationError, FinopsError, UnsupportedProviderError
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.base import AccountOnboarding, OnboardedAccount, ValidationReport
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import open_credentials

__all__ = [
    "OnboardedAccount",
    "RemovedAccount",
    "account_summaries",
    "account_summary",
    "add_account",
    "provider_onboarding",
    "remove_account",
    "set_status",
    "validate_account",
    "validate_new_account",
]

logger = logging.getLogger(__name__)


def provider_onboarding(provider: str) -> AccountOnboarding:
    """How accounts of ``provider`` are onboarded.

    Raises:
        UnsupportedProviderError: The provider is not registered, or has no onboarding yet.
    """
    spec = provider_spec(provider)
    if spec.onboarding is None:
        raise UnsupportedProviderError(
            f"Accounts of provider {spec.name!r} cannot be onboarded yet."
        )
    return spec.onboarding


def add_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    tenant_id: str,
    name: str,
    provider: str,
    provider_account_id: str,
    endpoint_url: str | None = None,
    management_account: bool = False,
    **inputs: Any,
) -> OnboardedAccount:
    """Register an account with its credentials, encrypted and bound to the new row.

    A ``management_account`` (AWS Organizations payer) has its members discovered and
    collected as accounts of their own. Registering a discovered member's own credentials
    takes the member row over: it keeps its id and history, and is no longer collected
    through the payer.

    ``inputs`` are the provider's credential inputs (AWS: ``access_key_id``,
    ``secret_access_key``, ``role_arn``; see its ``AccountOnboarding.build_credentials``). When
    the provider uses the tenant's external id (an AWS role), it is created on first use and
    reused after.

    Raises:
        UnsupportedProviderError: The provider has no collector.
        ConfigurationError: Bad input, or the account is already registered for the tenant.
    """
    # An unregistered provider is refused before anything is written.
    onboarding = provider_onboarding(provider)
    check_tenant_id(tenant_id)
    if not name or not name.strip():
        raise ConfigurationError("The account name is empty; pass --name.")
    # Check the input before the tenant (and its external id) is created, so bad input
    # leaves the database untouched.
    uses_external_id = onboarding.uses_tenant_external_id(inputs)
    onboarding.build_credentials(
        provider_account_id=provider_account_id,
        external_id="not-yet-known" if uses_external_id else None,
        **inputs,
    )
    external_id = ensure_tenant(connection, tenant_id) if uses_external_id else None
    credentials = onboarding.build_credentials(
        provider_account_id=provider_account_id, external_id=external_id, **inputs
    )
    try:
        account_id = register_account(
            connection,
            ring,
            tenant_id=tenant_id,
            name=name.strip(),
            provider=provider,
            provider_account_id=provider_account_id,
            credentials=credentials,
            endpoint_url=endpoint_url or None,
            management_account=management_account,
        )
    except psycopg.errors.UniqueViolation:
        member = find_member_id(connection, tenant_id, provider, provider_account_id)
        if member is not None:
            take_over_member(
                connection,
                ring,
                member,
                credentials,
                name=name.strip(),
                endpoint_url=endpoint_url or None,
                management_account=management_account,
            )
            logger.info("Account %s now uses its own credentials, not its payer's", member)
            return OnboardedAccount(member, credentials.kind, external_id, tenant_id)
        existing = find_account_id(connection, tenant_id, provider, provider_account_id)
        raise ConfigurationError(
            f"Tenant {tenant_id!r} already has {provider} account {provider_account_id}"
            + (f" (id {existing})" if existing else "")
            + "; remove it first to re-register it."
        ) from None
    logger.info("Registered %s account %s for tenant %s", credentials.kind, account_id, tenant_id)
    return OnboardedAccount(account_id, credentials.kind, external_id, tenant_id)


def account_summary(
    account: CloudAccount,
    paid_requests_this_month: int | None = None,
    qpu_this_month: int | None = None,
) -> dict[str, Any]:
    """The account's public fields; never the credentials, nor the external id."""
    return {
        "id": account.id,
        "tenant_id": account.tenant_id,
        "name": account.name,
        "provider": account.provider,
        "provider_account_id": account.provider_account_id,
        "credential_kind": account.credential_kind,
        "endpoint_url": account.endpoint_url,
        "status": account.status,
        "created_at": account.created_at.isoformat(),
        "last_sync_at": account.last_sync_at.isoformat() if account.last_sync_at else None,
        "last_sync_status": account.last_sync_status,
        "last_sync_error": account.last_sync_error,
        "management_account": account.management_account,
        "payer_account_id": account.payer_account_id,
        "paid_requests_this_month": paid_requests_this_month,
        # Query processing units consumed (Azure's budget unit); None when it consumed none.
        "qpu_this_month": qpu_this_month,
    }


def account_summaries(connection: psycopg.Connection) -> list[dict[str, Any]]:
    """Every account's public fields, paid requests and QPU this month, oldest first."""
    spent = account_requests(connection)
    qpu = account_requests(connection, unit=UNIT_QPU)
    return [
        account_summary(account, spent.get(account.id, 0), qpu.get(account.id))
        for account in list_accounts(connection)
    ]


def set_status(connection: psycopg.Connection, account_id: str, status: str) -> None:
    """Set an account ``active`` or ``disabled``; disabled accounts are skipped by runs.

    Raises:
        AccountNotFoundError: No such account.
    """
    if status not in {"active", "disabled"}:
        raise ConfigurationError(f"Unknown status {status!r}; use active or disabled.")
    get_account(connection, account_id)
    set_account_status(connection, account_id, status)


def remove_account(
    connection: psycopg.Connection, account_id: str, *, purge: bool = False
) -> RemovedAccount:
    """Delete the account and its credentials; its cost history stays unless ``purge``.

    Everything happens in one transaction.

    Raises:
        AccountNotFoundError: No such account.
    """
    get_account(connection, account_id)
    return delete_account(connection, account_id, purge=purge)


def validate_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    account_id: str,
    *,
    endpoints: Mapping[str, str | None] | None = None,
    today: dt.date | None = None,
    **provider_options: Any,
) -> ValidationReport:
    """Run the account's provider's validation probe; disable the account if the report says
    its credentials trust callers without the tenant's proof (an AWS role without the external
    id).

    ``endpoints`` are the configured overrides (``FinopsConfig.endpoints()``); the account's own
    endpoint wins. ``provider_options`` go to the provider's probe (AWS: ``principal``, else read
    from ``FINOPS_PIPELINE_AWS_*``).

    Raises:
        AccountNotFoundError: No such account.
    """
    account = get_account(connection, account_id)
    try:
        spec = provider_spec(account.provider)
    except UnsupportedProviderError:
        spec = None
    if spec is None or spec.validate is None:
        report = ValidationReport(account_id=account.id)
        report.add("provider", False, f"no validation for provider {account.provider!r} yet")
        return report
    try:
        credentials = open_credentials(account, ring)
    except FinopsError as error:
        report = spec.validation_report(account.id)
        report.add("decrypt", False, f"{type(error).__name__}: {error}")
        return report
    report = spec.validate(
        account,
        credentials,
        endpoints or {},
        client_hook=spec.client_hook,
        today=today,
        **provider_options,
    )
    if report.unsafe_trust_policy and account.status != "disabled":
        set_status(connection, account.id, "disabled")
        logger.warning(
            "Disabled account %s: its credentials do not require the tenant's external id",
            account.id,
        )
    return report


def validate_new_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    account_id: str,
    *,
    endpoints: Mapping[str, str | None] | None = None,
    today: dt.date | None = None,
    **provider_options: Any,
) -> ValidationReport:
    """Validate a just-added account and remove it unless every check passed.

    The account is removed on a failed check and also when validation never finishes (an
    unexpected error, Ctrl-C), so ``accounts add --validate`` keeps nothing it did not prove.
    A tenant's external id stays: the customer's trust policy names it.

    Raises:
        Whatever validation raised, after the account was removed.
    """
    kept = False
    try:
        report = validate_account(
            connection, ring, account_id, endpoints=endpoints, today=today, **provider_options
        )
        kept = report.ok
        return report
    finally:
        if not kept:
            remove_account(connection, account_id, purge=True)
            logger.info("Removed account %s: it did not pass validation", account_id)
