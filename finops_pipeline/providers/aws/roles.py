"""AWS sessions from explicit credentials: access keys, or a role assumed with an external id.

The pipeline's own AWS principal exists only to call ``sts:AssumeRole``. It comes from explicit
configuration (``FINOPS_PIPELINE_AWS_ACCESS_KEY_ID`` / ``FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY``),
never from the ambient credential chain (instance profile, ``~/.aws``, ``AWS_*`` variables), so
whatever happens to be on the host can never be used against a customer's account.

This module is pure: no Dagster, no database.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from finops_pipeline.config import ENV_STS_ENDPOINT_URL, FinopsConfig
from finops_pipeline.errors import (
    ConfigurationError,
    CredentialError,
    ProviderAccessDeniedError,
    ProviderError,
    ProviderThrottledError,
)
from finops_pipeline.providers.aws.client import quiet_aws_sdk_loggers, static_session
from finops_pipeline.providers.aws.constants import CE_REGION
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials, AwsRoleCredentials
from finops_pipeline.providers.aws.paging import EXPIRED_TOKEN_CODES
from finops_pipeline.security.credentials import Credentials, Secret
from finops_pipeline.security.redaction import register_secrets

logger = logging.getLogger(__name__)

PIPELINE_ACCESS_KEY_ID_ENV = "FINOPS_PIPELINE_AWS_ACCESS_KEY_ID"
PIPELINE_SECRET_ACCESS_KEY_ENV = "FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY"
PIPELINE_SESSION_TOKEN_ENV = "FINOPS_PIPELINE_AWS_SESSION_TOKEN"
PIPELINE_PRINCIPAL_ARN_ENV = "FINOPS_PIPELINE_AWS_PRINCIPAL_ARN"
STS_ENDPOINT_ENV = ENV_STS_ENDPOINT_URL

#: One hour is the default maximum session of an IAM role; long fetches refresh before expiry.
DEFAULT_ROLE_SESSION_SECONDS = 3600
ROLE_SESSION_NAME = "finops-pipeline"


_ROLE_ARN_RE = re.compile(r"^arn:aws[a-zA-Z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")

#: The IAM actions the pipeline needs in a customer's account.
REQUIRED_ACTIONS = ("ce:GetCostAndUsage",)
OPTIONAL_ACTIONS = ("ce:GetDimensionValues",)


def role_account_id(role_arn: str) -> str:
    """The 12-digit account id in a role ARN.

    Raises:
        ConfigurationError: The ARN is not an IAM role ARN.
    """
    match = _ROLE_ARN_RE.match(role_arn or "")
    if match is None:
        raise ConfigurationError(
            f"{role_arn!r} is not an IAM role ARN; expected "
            "arn:aws:iam::<12-digit account>:role/<name>."
        )
    return match.group(1)


# --- the pipeline's own principal ----------------------------------------------------------


@dataclass(frozen=True)
class PipelinePrincipal:
    """The AWS identity the pipeline uses to assume customers' roles.

    Attributes:
        credentials: Its access key (never the ambient chain's).
        sts_endpoint_url: An STS endpoint override (private endpoint or a test double).
    """

    credentials: AwsAccessKeyCredentials
    sts_endpoint_url: str | None = None

    def __repr__(self) -> str:
        """Show only the masked access key id."""
        return f"PipelinePrincipal({self.credentials!r})"


def pipeline_principal(
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None = None,
    *,
    sts_endpoint_url: str | None = None,
) -> PipelinePrincipal | None:
    """Build the pipeline principal from explicit values; None when none is configured.

    Raises:
        ConfigurationError: Only one half of the key pair is set.
    """
    if not access_key_id and not secret_access_key:
        return None
    if not access_key_id or not secret_access_key:
        raise ConfigurationError(
            f"Set both {PIPELINE_ACCESS_KEY_ID_ENV} and {PIPELINE_SECRET_ACCESS_KEY_ENV} for the "
            "pipeline's own AWS principal, or neither."
        )
    register_secrets(secret_access_key)
    if session_token:
        register_secrets(session_token)
    return PipelinePrincipal(
        credentials=AwsAccessKeyCredentials(
            access_key_id=access_key_id,
            secret_access_key=Secret(secret_access_key),
            session_token=Secret(session_token) if session_token else None,
        ),
        sts_endpoint_url=sts_endpoint_url or None,
    )


def sts_endpoint_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """``FINOPS_STS_ENDPOINT_URL``: where every STS call goes, for roles and access keys alike."""
    return FinopsConfig.from_env(environ).sts_endpoint_url


def pipeline_principal_from_environment(
    environ: Mapping[str, str] | None = None,
) -> PipelinePrincipal | None:
    """The pipeline principal from ``FINOPS_PIPELINE_AWS_*`` variables (for the CLI)."""
    env = os.environ if environ is None else environ
    return pipeline_principal(
        env.get(PIPELINE_ACCESS_KEY_ID_ENV, "").strip() or None,
        env.get(PIPELINE_SECRET_ACCESS_KEY_ENV, "").strip() or None,
        env.get(PIPELINE_SESSION_TOKEN_ENV, "").strip() or None,
        sts_endpoint_url=sts_endpoint_from_environment(env),
    )


def _require_principal(principal: PipelinePrincipal | None, role_arn: str) -> PipelinePrincipal:
    if principal is None:
        raise ConfigurationError(
            f"The account uses the IAM role {role_arn}, but the pipeline has no AWS principal "
            f"to assume it with. Set {PIPELINE_ACCESS_KEY_ID_ENV} and "
            f"{PIPELINE_SECRET_ACCESS_KEY_ENV}."
        )
    return principal


# --- sessions ------------------------------------------------------------------------------


def _explicit_session(credentials: Any) -> boto3.session.Session:
    """A boto3 session that uses only ``credentials`` (static or refreshable).

    A fresh botocore session with its credentials set never consults environment variables,
    shared config files, instance metadata or SSO.
    """
    quiet_aws_sdk_loggers()
    core = botocore.session.Session()
    # Setting the credentials object directly is how botocore takes refreshable credentials;
    # get_credentials() then returns it and never runs the provider chain.
    core._credentials = credentials
    return boto3.session.Session(botocore_session=core, region_name=CE_REGION)


def _sts_config() -> Config:
    return Config(
        region_name=CE_REGION,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=30,
        user_agent_extra="finops-pipeline",
        ignore_configured_endpoint_urls=True,
    )


def sts_client(credentials: AwsAccessKeyCredentials, endpoint_url: str | None = None) -> Any:
    """An STS client for explicit credentials, at the regional endpoint."""
    return static_session(credentials).client(
        "sts", endpoint_url=endpoint_url or None, config=_sts_config()
    )


def translate_sts_error(error: ClientError, role_arn: str) -> ProviderError | ConfigurationError:
    """Map an AssumeRole failure to a typed, secret-free error that says what to fix."""
    code = error.response.get("Error", {}).get("Code", "Unknown")
    if code == "AccessDenied":
        return ProviderAccessDeniedError(
            f"AWS refused to let the pipeline assume {role_arn} (AccessDenied). Check that the "
            "role exists, that its trust policy names the pipeline's principal and requires "
            "this tenant's external id, then run `finops accounts validate`."
        )
    if code in {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"}:
        return ConfigurationError(
            f"AWS rejected the pipeline's own access key ({code}). Check "
            f"{PIPELINE_ACCESS_KEY_ID_ENV} and {PIPELINE_SECRET_ACCESS_KEY_ENV}."
        )
    if code in EXPIRED_TOKEN_CODES:
        return ConfigurationError(
            f"The pipeline's own AWS session token has expired ({code}); renew "
            f"{PIPELINE_SESSION_TOKEN_ENV} or use a long-lived key."
        )
    if code in {"Throttling", "ThrottlingException", "RequestLimitExceeded"}:
        return ProviderThrottledError(f"STS kept throttling AssumeRole for {role_arn} ({code}).")
    if code in {"RegionDisabledException", "MalformedPolicyDocument", "ValidationError"}:
        return ProviderError(f"STS rejected AssumeRole for {role_arn} ({code}).")
    transient = ProviderError(f"STS AssumeRole for {role_arn} failed with {code}; retry later.")
    transient.permanent = False
    return transient


def assume_role(
    principal: PipelinePrincipal,
    role: AwsRoleCredentials,
    *,
    duration_seconds: int = DEFAULT_ROLE_SESSION_SECONDS,
    with_external_id: bool = True,
    session_name: str = ROLE_SESSION_NAME,
) -> dict[str, Any]:
    """Call ``sts:AssumeRole`` and return the raw ``Credentials`` and ``AssumedRoleUser``.

    The session's secret key and token are registered with the log redactor at once.

    Args:
        principal: The pipeline's own principal.
        role: The role and the tenant's external id.
        duration_seconds: The session length.
        with_external_id: False only for the validation check that the role refuses callers
            without the external id.
        session_name: The role session name, shown in the customer's CloudTrail.

    Raises:
        ProviderAccessDeniedError: The role refused the pipeline.
        ConfigurationError: The pipeline's own key was rejected.
        ProviderError: Anything else (transient unless the request itself was invalid).
    """
    request: dict[str, Any] = {
        "RoleArn": role.role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if with_external_id:
        request["ExternalId"] = role.external_id.reveal()
    try:
        response = sts_client(principal.credentials, principal.sts_endpoint_url).assume_role(
            **request
        )
    except ClientError as error:
        raise translate_sts_error(error, role.role_arn) from None
    except BotoCoreError as error:
        unreachable = ProviderError(
            f"Could not reach STS to assume {role.role_arn} ({type(error).__name__}); retry later."
        )
        unreachable.permanent = False
        raise unreachable from None
    credentials = response["Credentials"]
    register_secrets(credentials["SecretAccessKey"], credentials["SessionToken"])
    return {"Credentials": credentials, "AssumedRoleUser": response.get("AssumedRoleUser", {})}


class RoleSessionCredentials(DeferredRefreshableCredentials):
    """Assumed-role credentials that botocore refreshes before they expire.

    botocore refreshes them on its own within 15 minutes of expiry. :meth:`expire_now` forces a
    refresh for when AWS reports the token expired earlier than our clock expected (clock skew,
    or a session revoked by the customer).
    """

    def __init__(
        self,
        refresh_using: Callable[[], dict[str, Any]],
        *,
        time_fetcher: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """Create credentials fetched on first use.

        Args:
            refresh_using: Returns botocore's credential metadata dict.
            time_fetcher: The clock, for tests; botocore's local UTC clock by default.
        """
        if time_fetcher is None:
            super().__init__(refresh_using=refresh_using, method="finops-assume-role")
        else:
            super().__init__(
                refresh_using=refresh_using, method="finops-assume-role", time_fetcher=time_fetcher
            )
        self._force_refresh = threading.Event()
        self.refresh_count = 0

    def expire_now(self) -> None:
        """Make the next request fetch new session credentials first."""
        self._force_refresh.set()

    def refresh_needed(self, refresh_in: int | None = None) -> bool:
        """True when forced, else botocore's expiry rule."""
        if self._force_refresh.is_set():
            return True
        return super().refresh_needed(refresh_in)

    def _protected_refresh(self, is_mandatory: bool) -> None:
        forced = self._force_refresh.is_set()
        # Cleared first: botocore re-checks refresh_needed() after fetching, to catch sessions
        # that arrive already expired. A forced refresh must not be swallowed as "advisory":
        # the old token is known dead.
        self._force_refresh.clear()
        super()._protected_refresh(is_mandatory=is_mandatory or forced)
        self.refresh_count += 1


def role_session_credentials(
    principal: PipelinePrincipal,
    role: AwsRoleCredentials,
    *,
    duration_seconds: int = DEFAULT_ROLE_SESSION_SECONDS,
    clock: Callable[[], dt.datetime] | None = None,
) -> RoleSessionCredentials:
    """Refreshable credentials for ``role``; nothing is called until the first request.

    Args:
        principal: The pipeline's own principal.
        role: The role and external id.
        duration_seconds: The session length asked of STS.
        clock: The UTC clock botocore compares the expiry with (tests move it forward).
    """

    def fetch() -> dict[str, Any]:
        assumed = assume_role(principal, role, duration_seconds=duration_seconds)["Credentials"]
        expiration = assumed["Expiration"]
        if isinstance(expiration, dt.datetime):
            expiration = expiration.isoformat()
        logger.info("Assumed %s; session valid until %s", role.role_arn, expiration)
        return {
            "access_key": assumed["AccessKeyId"],
            "secret_key": assumed["SecretAccessKey"],
            "token": assumed["SessionToken"],
            "expiry_time": expiration,
        }

    return RoleSessionCredentials(fetch, time_fetcher=clock)


@dataclass
class AwsSession:
    """A boto3 session for one account, and its refreshable credentials if it is a role."""

    session: boto3.session.Session
    role_credentials: RoleSessionCredentials | None = None

    def client(self, service: str, *, endpoint_url: str | None = None, config: Config) -> Any:
        """A client of this session."""
        return self.session.client(service, endpoint_url=endpoint_url or None, config=config)

    def expire_credentials(self) -> bool:
        """Force a refresh of role credentials; False for static keys, which cannot refresh."""
        if self.role_credentials is None:
            return False
        self.role_credentials.expire_now()
        return True


def session_for(
    credentials: Credentials,
    principal: PipelinePrincipal | None,
    *,
    duration_seconds: int = DEFAULT_ROLE_SESSION_SECONDS,
    clock: Callable[[], dt.datetime] | None = None,
) -> AwsSession:
    """A session for an account's decrypted credentials.

    Raises:
        ConfigurationError: A role account, but no pipeline principal is configured.
        CredentialError: An unknown credential type.
    """
    if isinstance(credentials, AwsAccessKeyCredentials):
        return AwsSession(static_session(credentials))
    if isinstance(credentials, AwsRoleCredentials):
        principal = _require_principal(principal, credentials.role_arn)
        refreshable = role_session_credentials(
            principal, credentials, duration_seconds=duration_seconds, clock=clock
        )
        return AwsSession(_explicit_session(refreshable), refreshable)
    raise CredentialError(
        f"Credentials of type {type(credentials).__name__} cannot be used with AWS; "
        "register access keys or an IAM role."
    )


# --- policies shown to the customer --------------------------------------------------------


def trust_policy(pipeline_principal_arn: str, external_id: str) -> dict[str, Any]:
    """The trust policy the customer attaches to the role the pipeline assumes."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": pipeline_principal_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def permission_policy(*, include_dimension_values: bool = False) -> dict[str, Any]:
    """The least-privilege permission policy for the role (or the access key's user)."""
    actions = list(REQUIRED_ACTIONS)
    if include_dimension_values:
        actions.extend(OPTIONAL_ACTIONS)
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }


def policy_json(policy: Mapping[str, Any]) -> str:
    """A policy as indented JSON, ready to paste into the IAM console."""
    return json.dumps(policy, indent=2)


PRINCIPAL_ARN_PLACEHOLDER = "arn:aws:iam::<PIPELINE_AWS_ACCOUNT_ID>:root"


def resolve_principal_arn(
    principal: PipelinePrincipal | None, explicit_arn: str | None = None
) -> str | None:
    """The ARN customers' trust policies must name: explicit, else asked of STS (free).

    Returns:
        The ARN, or None when neither an ARN nor a principal is configured.
    """
    if explicit_arn:
        return explicit_arn
    if principal is None:
        return None
    try:
        identity = sts_client(
            principal.credentials, principal.sts_endpoint_url
        ).get_caller_identity()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        raise ConfigurationError(
            f"AWS rejected the pipeline's own access key ({code}). Check "
            f"{PIPELINE_ACCESS_KEY_ID_ENV} and {PIPELINE_SECRET_ACCESS_KEY_ENV}."
        ) from None
    except BotoCoreError as error:
        raise ConfigurationError(
            f"Could not reach STS to look up the pipeline's ARN ({type(error).__name__}); set "
            f"{PIPELINE_PRINCIPAL_ARN_ENV} instead."
        ) from None
    return str(identity["Arn"])
