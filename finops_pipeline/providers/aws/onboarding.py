"""Onboarding an AWS account: checking the input, building its credentials, and the policies the
customer must grant, for ``finops accounts add --provider aws``.

This module is pure: no Dagster, no database, no click.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials, AwsRoleCredentials
from finops_pipeline.providers.aws.roles import (
    PRINCIPAL_ARN_PLACEHOLDER,
    permission_policy,
    pipeline_principal_from_environment,
    policy_json,
    resolve_principal_arn,
    role_account_id,
    trust_policy,
)
from finops_pipeline.providers.base import AccountOnboarding, OnboardedAccount, SecretReader
from finops_pipeline.security.credentials import Credentials, Secret

#: Where ``accounts add --access-key-id`` reads the secret when ``--secret-stdin`` is not given.
SECRET_ENV = "FINOPS_AWS_SECRET_ACCESS_KEY"

_AWS_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ACCESS_KEY_ID_RE = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")


def build_aws_credentials(
    *,
    provider_account_id: str,
    external_id: str | None,
    access_key_id: str | None = None,
    secret_access_key: Secret | None = None,
    role_arn: str | None = None,
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
            f"{SECRET_ENV} or --secret-stdin) or --role-arn."
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
            f"No secret access key given. Set {SECRET_ENV} or pipe it to "
            "--secret-stdin; it is never accepted on the command line."
        )
    return AwsAccessKeyCredentials(access_key_id=access_key_id, secret_access_key=secret_access_key)


def uses_tenant_external_id(inputs: Mapping[str, Any]) -> bool:
    """A role account names the tenant's external id in its trust policy; a key does not."""
    return bool(inputs.get("role_arn"))


def inputs_from_options(
    options: Mapping[str, Any], read_secret: SecretReader, note: Callable[[str], None]
) -> dict[str, Any]:
    """``accounts add``'s AWS options (``--access-key-id``, ``--secret-stdin``, ``--role-arn``)
    as :func:`build_aws_credentials` inputs.

    The secret is read only for an access key; the pipeline's own principal
    (``FINOPS_PIPELINE_AWS_*``) is checked here, before anything is written.
    """
    access_key_id = options.get("access_key_id")
    role_arn = options.get("role_arn")
    secret_stdin = bool(options.get("secret_stdin"))
    secret = read_secret(SECRET_ENV, secret_stdin) if access_key_id else None
    if role_arn and (secret_stdin or os.environ.get(SECRET_ENV)):
        note(f"ignoring the secret ({SECRET_ENV}/--secret-stdin) for a role")
    pipeline_principal_from_environment()
    return {"access_key_id": access_key_id, "secret_access_key": secret, "role_arn": role_arn}


def onboarding_text(added: OnboardedAccount, options: Mapping[str, Any]) -> str | None:
    """For a role: the external id and the trust and permission policies the customer attaches.

    The trust policy names the pipeline's principal: ``--pipeline-principal-arn``, else asked of
    STS with ``FINOPS_PIPELINE_AWS_*`` (free), else a placeholder to fill in.
    """
    if added.external_id is None:
        return None
    principal = pipeline_principal_from_environment()
    arn = resolve_principal_arn(principal, options.get("pipeline_principal_arn"))
    return "\n".join(
        [
            f"\nexternal id for tenant {added.tenant_id}: {added.external_id}",
            "\ntrust policy for the role:",
            policy_json(trust_policy(arn or PRINCIPAL_ARN_PLACEHOLDER, added.external_id)),
            "\npermission policy for the role:",
            policy_json(permission_policy()),
            f"\nthen run: finops accounts validate {added.account_id}\n",
        ]
    )


AWS_ONBOARDING = AccountOnboarding(
    build_credentials=build_aws_credentials,
    uses_tenant_external_id=uses_tenant_external_id,
    inputs_from_options=inputs_from_options,
    onboarding_text=onboarding_text,
)
