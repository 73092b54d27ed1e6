"""Onboarding cloud accounts: add, list, validate, disable, remove.

The Python API behind ``finops accounts``. Secrets arrive as :class:`Secret` values and leave
only encrypted; nothing here logs or returns them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import psycopg

from finops_pipeline.db.accounts import CloudAccount, get_account, list_accounts, register_account
from finops_pipeline.db.request_budget import account_requests
from finops_pipeline.db.tenants import check_tenant_id, ensure_tenant
from finops_pipeline.errors import ConfigurationError, FinopsError, UnsupportedProviderError
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.aws.roles import PipelinePrincipal, role_account_id
from finops_pipeline.providers.aws.validation import ValidationReport, validate_aws_account
from finops_pipeline.security.ciphertext import EncryptionContext, KeyRing, encrypt
from finops_pipeline.security.credentials import (
    AwsAccessKeyCredentials,
    AwsRoleCredentials,
    Credentials,
    Secret,
    open_credentials,
    serialize_credentials,
)

logger = logging.getLogger(__name__)

_AWS_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ACCESS_KEY_ID_RE = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")


@dataclass(frozen=True)
class OnboardedAccount:
    """A newly registered account.

    Attributes:
        account_id: Its new id.
        credential_kind: ``aws_access_key`` or ``aws_role``.
        external_id: The tenant's external id, for role accounts (put it in the trust policy).
    """

    account_id: str
    credential_kind: str
    external_id: str | None = None


def build_aws_credentials(
    *,
    provider_account_id: str,
    access_key_id: str | None,
    secret_access_key: Secret | None,
    role_arn: str | None,
    external_id: str | None,
) -> Credentials:
    """Check the onboarding input and build the credentials object.

    Raises:
        ConfigurationError: Both or neither credential kinds, a malformed account number, key id
            or role ARN, a missing secret, or a role in another account.
    """
    if not _AWS_ACCOUNT_RE.match(provider_account_id or ""):
        raise ConfigurationError(
            f"{provider_account_id!r} is not an AWS account number; give its 12 digits."
        )
    if bool(access_key_id) == bool(role_arn):
        raise ConfigurationError(
            "Give exactly one credential kind: --access-key-id (with the secret in "
            "FINOPS_AWS_SECRET_ACCESS_KEY or --secret-stdin) or --role-arn."
        )
    if role_arn:
        arn_account = role_account_id(role_arn)
        if arn_account != provider_account_id:
            raise ConfigurationError(
                f"The role ARN is in account {arn_account}, not {provider_account_id}; "
                "register the account the role lives in."
            )
        if not external_id:
            raise ConfigurationError("A role account needs the tenant's external id.")
        return AwsRoleCredentials(role_arn=role_arn, external_id=Secret(external_id))
    assert access_key_id is not None
    if not _ACCESS_KEY_ID_RE.match(access_key_id):
        raise ConfigurationError(
            "The access key id does not look like an AWS key id (AKIA... or ASIA...); "
            "check it was copied whole."
        )
    if secret_access_key is None or not secret_access_key:
        raise ConfigurationError(
            "No secret access key given. Set FINOPS_AWS_SECRET_ACCESS_KEY or pipe it to "
            "--secret-stdin; it is never accepted on the command line."
        )
    return AwsAccessKeyCredentials(access_key_id=access_key_id, secret_access_key=secret_access_key)


def add_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    tenant_id: str,
    name: str,
    provider: str,
    provider_account_id: str,
    access_key_id: str | None = None,
    secret_access_key: Secret | None = None,
    role_arn: str | None = None,
    endpoint_url: str | None = None,
    management_account: bool = False,
) -> OnboardedAccount:
    """Register an account with its credentials, encrypted and bound to the new row.

    For a role account the tenant's external id is created on first use and reused after.
    A ``management_account`` (AWS Organizations payer) has its members discovered and
    collected as accounts of their own. Registering a discovered member's own credentials
    takes the member row over: it keeps its id and history, and is no longer collected
    through the payer.

    Raises:
        UnsupportedProviderError: The provider has no collector.
        ConfigurationError: Bad input, or the account is already registered for the tenant.
    """
    provider_spec(provider)  # an unregistered provider is refused before anything is written
    check_tenant_id(tenant_id)
    if not name or not name.strip():
        raise ConfigurationError("The account name is empty; pass --name.")
    # Check the input before the tenant (and its external id) is created, so bad input
    # leaves the database untouched.
    build_aws_credentials(
        provider_account_id=provider_account_id,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        role_arn=role_arn,
        external_id="not-yet-known",
    )
    external_id = ensure_tenant(connection, tenant_id) if role_arn else None
    credentials = build_aws_credentials(
        provider_account_id=provider_account_id,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        role_arn=role_arn,
        external_id=external_id,
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
        existing = connection.execute(
            "SELECT id::text, payer_account_id IS NOT NULL FROM cloud_accounts "
            "WHERE tenant_id = %s AND provider = %s AND provider_account_id = %s",
            (tenant_id, provider, provider_account_id),
        ).fetchone()
        if existing is not None and existing[1]:
            take_over_member(
                connection,
                ring,
                existing[0],
                credentials,
                name=name.strip(),
                endpoint_url=endpoint_url or None,
                management_account=management_account,
            )
            logger.info("Account %s now uses its own credentials, not its payer's", existing[0])
            return OnboardedAccount(existing[0], credentials.kind, external_id)
        raise ConfigurationError(
            f"Tenant {tenant_id!r} already has {provider} account {provider_account_id}"
            + (f" (id {existing[0]})" if existing else "")
            + "; remove it first to re-register it."
        ) from None
    logger.info("Registered %s account %s for tenant %s", credentials.kind, account_id, tenant_id)
    return OnboardedAccount(account_id, credentials.kind, external_id)


def take_over_member(
    connection: psycopg.Connection,
    ring: KeyRing,
    account_id: str,
    credentials: Credentials,
    *,
    name: str,
    endpoint_url: str | None,
    management_account: bool,
) -> None:
    """Give a discovered member its own credentials and unlink it from its payer."""
    account = get_account(connection, account_id)
    kind = credentials.kind
    blob = encrypt(
        serialize_credentials(credentials),
        ring,
        EncryptionContext(tenant_id=account.tenant_id, account_id=account.id, credential_kind=kind),
    )
    with connection.transaction():
        connection.execute(
            """
            UPDATE cloud_accounts
            SET credentials_encrypted = %s, credential_kind = %s, name = %s, endpoint_url = %s,
                payer_account_id = NULL, member_gone_at = NULL, management_account = %s,
                status = 'active', updated_at = now()
            WHERE id = %s
            """,
            (blob, kind, name, endpoint_url, management_account, account.id),
        )


def account_summary(
    account: CloudAccount, paid_requests_this_month: int | None = None
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
    }


def account_summaries(connection: psycopg.Connection) -> list[dict[str, Any]]:
    """Every account's public fields and paid requests this month, oldest first."""
    spent = account_requests(connection)
    return [
        account_summary(account, spent.get(account.id, 0)) for account in list_accounts(connection)
    ]


def set_status(connection: psycopg.Connection, account_id: str, status: str) -> None:
    """Set an account ``active`` or ``disabled``; disabled accounts are skipped by runs.

    Raises:
        AccountNotFoundError: No such account.
    """
    if status not in {"active", "disabled"}:
        raise ConfigurationError(f"Unknown status {status!r}; use active or disabled.")
    get_account(connection, account_id)
    with connection.transaction():
        connection.execute(
            "UPDATE cloud_accounts SET status = %s, updated_at = now() WHERE id = %s",
            (status, account_id),
        )


@dataclass(frozen=True)
class RemovedAccount:
    """What removing an account deleted."""

    account_id: str
    cost_rows_deleted: int
    sync_runs_deleted: int


def remove_account(
    connection: psycopg.Connection, account_id: str, *, purge: bool = False
) -> RemovedAccount:
    """Delete the account and its credentials; its cost history stays unless ``purge``.

    Everything happens in one transaction.

    Raises:
        AccountNotFoundError: No such account.
    """
    get_account(connection, account_id)
    cost_rows = sync_rows = 0
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM cloud_accounts WHERE id = %s", (account_id,))
        if purge:
            cursor.execute("DELETE FROM cost_data WHERE cloud_account_id = %s", (account_id,))
            cost_rows = cursor.rowcount
            cursor.execute(
                "DELETE FROM account_sync_runs WHERE cloud_account_id = %s", (account_id,)
            )
            sync_rows = cursor.rowcount
            # The quality checks' facts about the rows just purged.
            cursor.execute("DELETE FROM cost_data_days WHERE cloud_account_id = %s", (account_id,))
            cursor.execute(
                "DELETE FROM cost_provider_totals WHERE cloud_account_id = %s", (account_id,)
            )
    return RemovedAccount(account_id, cost_rows, sync_rows)


def validate_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    account_id: str,
    *,
    principal: PipelinePrincipal | None,
    ce_endpoint_url: str | None = None,
    sts_endpoint_url: str | None = None,
    today: dt.date | None = None,
) -> ValidationReport:
    """Validate an account; disable it if its role trusts callers without the external id.

    ``ce_endpoint_url`` applies when the account has no endpoint of its own;
    ``sts_endpoint_url`` (``FINOPS_STS_ENDPOINT_URL``) applies to every STS call.

    Raises:
        AccountNotFoundError: No such account.
    """
    account = get_account(connection, account_id)
    try:
        spec = provider_spec(account.provider)
    except UnsupportedProviderError:
        report = ValidationReport(account_id=account.id)
        report.add("provider", False, f"no validation for provider {account.provider!r} yet")
        return report
    try:
        credentials = open_credentials(account, ring)
    except FinopsError as error:
        report = ValidationReport(account_id=account.id)
        report.add("decrypt", False, f"{type(error).__name__}: {error}")
        return report
    report = validate_aws_account(
        account_id=account.id,
        provider_account_id=account.provider_account_id,
        credentials=credentials,
        principal=principal,
        ce_endpoint_url=account.endpoint_url or ce_endpoint_url,
        sts_endpoint_url=sts_endpoint_url,
        today=today,
        client_hook=spec.client_hook,
    )
    if report.unsafe_trust_policy and account.status != "disabled":
        set_status(connection, account.id, "disabled")
        logger.warning("Disabled account %s: its role does not require the external id", account.id)
    return report


def validate_new_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    account_id: str,
    *,
    principal: PipelinePrincipal | None,
    ce_endpoint_url: str | None = None,
    sts_endpoint_url: str | None = None,
    today: dt.date | None = None,
) -> ValidationReport:
    """Validate a just-added account and remove it unless every check passed.

    The account is removed on a failed check and also when validation never finishes (an
    unexpected error, Ctrl-C), so ``accounts add --validate`` keeps nothing it did not prove.
    A role account's tenant and external id stay: the customer's trust policy names them.

    Raises:
        Whatever validation raised, after the account was removed.
    """
    kept = False
    try:
        report = validate_account(
            connection,
            ring,
            account_id,
            principal=principal,
            ce_endpoint_url=ce_endpoint_url,
            sts_endpoint_url=sts_endpoint_url,
            today=today,
        )
        kept = report.ok
        return report
    finally:
        if not kept:
            remove_account(connection, account_id, purge=True)
            logger.info("Removed account %s: it did not pass validation", account_id)
