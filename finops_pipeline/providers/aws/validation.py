"""Proving an AWS account's credentials work for cost collection, before relying on them.

``GetCallerIdentity`` needs no permission, so it proves only that the credentials are real. A
one-day ``GetCostAndUsage`` probe proves Cost Explorer is allowed; it is a paid request
($0.01), counted and reported. For a role, the assumed identity must be in the ARN's account,
and assuming the role *without* the external id must fail: if it succeeds, the trust policy
does not require the external id, which opens the confused-deputy hole, and the account is
rejected.

This module is pure: no Dagster, no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from finops_pipeline.errors import FinopsError, ProviderAccessDeniedError
from finops_pipeline.providers.aws.client import client_config, cost_explorer_client
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.aws.credentials import AwsRoleCredentials
from finops_pipeline.providers.aws.errors import typed_aws_error
from finops_pipeline.providers.aws.paging import translate_client_error
from finops_pipeline.providers.aws.roles import (
    STS_ENDPOINT_ENV,
    AwsSession,
    PipelinePrincipal,
    assume_role,
    pipeline_principal_from_environment,
    role_account_id,
    session_for,
)
from finops_pipeline.providers.base import ClientHook, ValidationReport
from finops_pipeline.security.credentials import Credentials

if TYPE_CHECKING:
    from finops_pipeline.db.accounts import CloudAccount

#: ``principal`` not given: read the pipeline's own principal from ``FINOPS_PIPELINE_AWS_*``.
_FROM_ENVIRONMENT: Any = object()

# GetCallerIdentity answers these for an unknown key id or a wrong secret.
_UNKNOWN_KEY_CODES = frozenset(
    {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"}
)


def validate_account(
    account: CloudAccount,
    credentials: Credentials,
    endpoints: Mapping[str, str | None],
    *,
    client_hook: ClientHook | None = None,
    today: dt.date | None = None,
    principal: PipelinePrincipal | None = _FROM_ENVIRONMENT,
) -> ValidationReport:
    """The registry's validation probe for AWS accounts (see ``providers.base.AccountValidator``).

    The account's own endpoint wins over ``endpoints["ce_endpoint_url"]``;
    ``endpoints["sts_endpoint_url"]`` (``FINOPS_STS_ENDPOINT_URL``) applies to every STS call.
    """
    if principal is _FROM_ENVIRONMENT:
        principal = pipeline_principal_from_environment()
    return validate_aws_account(
        account_id=account.id,
        provider_account_id=account.provider_account_id,
        credentials=credentials,
        principal=principal,
        ce_endpoint_url=account.endpoint_url or endpoints.get("ce_endpoint_url"),
        sts_endpoint_url=endpoints.get("sts_endpoint_url"),
        today=today,
        client_hook=client_hook,
    )


def _probe_request(today: dt.date) -> dict[str, Any]:
    # End is exclusive: this asks for yesterday alone, one paid request.
    yesterday = today - dt.timedelta(days=1)
    return {
        "TimePeriod": {"Start": yesterday.isoformat(), "End": today.isoformat()},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
    }


def validate_aws_account(
    *,
    account_id: str,
    provider_account_id: str,
    credentials: Credentials,
    principal: PipelinePrincipal | None,
    ce_endpoint_url: str | None = None,
    sts_endpoint_url: str | None = None,
    today: dt.date | None = None,
    client_hook: ClientHook | None = None,
) -> ValidationReport:
    """Run every validation check that applies to the account's credential kind.

    Checks stop at the first failure that makes the later ones meaningless, and the paid probe
    runs last, so a broken or unsafe account costs nothing.

    Args:
        account_id: Our account id, for the report.
        provider_account_id: The 12-digit AWS account the account was registered with.
        credentials: The decrypted credentials.
        principal: The pipeline's own principal (needed for roles).
        ce_endpoint_url: A Cost Explorer endpoint override.
        sts_endpoint_url: An STS endpoint override (``FINOPS_STS_ENDPOINT_URL``); the
            principal's own override when None. Applies to access keys and roles alike.
        today: The UTC date (for tests); the probe asks for the day before.
        client_hook: The registry's hook for the Cost Explorer client (serves the sandbox).

    Returns:
        The report; ``report.ok`` says whether the account can be collected.
    """
    report = ValidationReport(
        account_id=account_id,
        paid_api="Cost Explorer",
        price_per_request_usd=CE_PRICE_PER_REQUEST_USD,
    )
    is_role = isinstance(credentials, AwsRoleCredentials)
    try:
        if is_role:
            assert isinstance(credentials, AwsRoleCredentials)
            arn_account = role_account_id(credentials.role_arn)
            report.add(
                "role_arn_account",
                arn_account == provider_account_id,
                f"the role ARN is in account {arn_account}; registered as {provider_account_id}",
            )
            if arn_account != provider_account_id:
                return report
        session = session_for(credentials, principal)
        if sts_endpoint_url is None and principal is not None:
            sts_endpoint_url = principal.sts_endpoint_url
        identity = _caller_identity(session, sts_endpoint_url, report)
        if identity is None:
            return report
        report.caller_arn = identity.get("Arn")
        report.caller_account = identity.get("Account")
        report.add(
            "credentials_valid",
            True,
            f"GetCallerIdentity answered as {report.caller_arn} (free; proves the credentials "
            "are real, not that Cost Explorer is allowed)",
        )
        if is_role:
            matches = report.caller_account == provider_account_id
            report.add(
                "assumed_account_matches",
                matches,
                f"the assumed identity is in account {report.caller_account}; the role ARN says "
                f"{provider_account_id}",
            )
            if not matches:
                return report
            assert isinstance(credentials, AwsRoleCredentials) and principal is not None
            if not _external_id_required(principal, credentials, report):
                return report
        _probe_cost_explorer(
            session, ce_endpoint_url, report, today or dt.datetime.now(dt.UTC), client_hook
        )
    except FinopsError as error:
        report.add("error", False, f"{type(error).__name__}: {error}")
    return report


def _caller_identity(
    session: AwsSession, endpoint_url: str | None, report: ValidationReport
) -> dict[str, Any] | None:
    """``GetCallerIdentity``, or None after recording why it failed."""
    sts = session.client("sts", endpoint_url=endpoint_url, config=client_config())
    try:
        return dict(sts.get_caller_identity())
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        if code in _UNKNOWN_KEY_CODES:
            detail = (
                f"AWS does not recognise these credentials ({code}); check the access key id "
                "and secret, or register the account again"
            )
        else:
            translated = typed_aws_error(error)
            detail = f"{type(translated).__name__}: {translated}"
    except BotoCoreError as error:
        where = endpoint_url or "the default STS endpoint"
        detail = (
            f"could not reach STS at {where} ({type(error).__name__}); check "
            f"{STS_ENDPOINT_ENV} and network access, then retry"
        )
    report.add("credentials_valid", False, detail)
    return None


def _external_id_required(
    principal: PipelinePrincipal, role: AwsRoleCredentials, report: ValidationReport
) -> bool:
    try:
        assume_role(principal, role, with_external_id=False, duration_seconds=900)
    except ProviderAccessDeniedError:
        report.add(
            "external_id_required",
            True,
            "assuming the role without the external id was refused, as it must be",
        )
        return True
    report.unsafe_trust_policy = True
    report.add(
        "external_id_required",
        False,
        "the role can be assumed WITHOUT the external id, so anyone who learns its ARN and can "
        "reach the pipeline could make it read this account (confused deputy). Add "
        '"Condition": {"StringEquals": {"sts:ExternalId": "<the tenant\'s external id>"}} '
        "to the trust policy; the account stays disabled until validation passes.",
    )
    return False


def _probe_cost_explorer(
    session: AwsSession,
    endpoint_url: str | None,
    report: ValidationReport,
    now: dt.date | dt.datetime,
    client_hook: ClientHook | None,
) -> None:
    today = now.date() if isinstance(now, dt.datetime) else now
    client = cost_explorer_client(
        session.session, endpoint_url=endpoint_url, config=client_config(), client_hook=client_hook
    )
    try:
        client.get_cost_and_usage(**_probe_request(today))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "DataUnavailableException":
            # Failed requests are free; a brand-new account simply has no data yet.
            report.add(
                "cost_explorer_allowed",
                True,
                "Cost Explorer answered DataUnavailable (a new account); access is allowed",
            )
            return
        translated = translate_client_error(error)
        report.add("cost_explorer_allowed", False, f"{type(translated).__name__}: {translated}")
        return
    except BotoCoreError as error:
        report.add(
            "cost_explorer_allowed",
            False,
            f"could not reach Cost Explorer ({type(error).__name__}); retry later",
        )
        return
    report.paid_requests += 1
    report.add(
        "cost_explorer_allowed",
        True,
        f"a one-day GetCostAndUsage probe succeeded (1 paid request, ${CE_PRICE_PER_REQUEST_USD})",
    )
