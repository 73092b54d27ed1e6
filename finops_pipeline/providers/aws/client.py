"""Building boto3 Cost Explorer clients from explicit credentials only."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from finops_pipeline.providers.aws.constants import CE_MAX_ATTEMPTS, CE_REGION
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.base import ClientHook

_CHATTY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def quiet_aws_sdk_loggers() -> None:
    """Keep the AWS SDK loggers above DEBUG.

    botocore at DEBUG logs raw requests and responses, including AssumeRole session keys
    (boto/botocore issue 2626), so DEBUG must never reach them, even when the root logger is
    at DEBUG.
    """
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


def client_config(*, max_attempts: int = CE_MAX_ATTEMPTS, retry_mode: str = "standard") -> Config:
    """botocore config for Cost Explorer.

    The default "legacy" retry mode does not retry LimitExceededException, Cost Explorer's
    throttling error; "standard" and "adaptive" do, with exponential backoff and jitter.
    """
    if retry_mode not in {"standard", "adaptive"}:
        raise ValueError("retry_mode must be 'standard' or 'adaptive'")
    return Config(
        region_name=CE_REGION,
        retries={"mode": retry_mode, "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="finops-pipeline",
        # Only an endpoint passed explicitly counts, never AWS_ENDPOINT_URL* from the environment.
        ignore_configured_endpoint_urls=True,
    )


def static_session(credentials: AwsAccessKeyCredentials) -> boto3.session.Session:
    """A boto3 session that uses exactly this access key.

    A fresh botocore session with explicit keys never consults environment variables, shared
    config files, instance metadata or SSO for credentials.
    """
    quiet_aws_sdk_loggers()
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key.reveal(),
        aws_session_token=(
            credentials.session_token.reveal() if credentials.session_token is not None else None
        ),
        region_name=CE_REGION,
        botocore_session=botocore.session.Session(),
    )


def cost_explorer_client(
    session: boto3.session.Session,
    *,
    endpoint_url: str | None = None,
    config: Config | None = None,
    client_hook: ClientHook | None = None,
) -> Any:
    """A ``ce`` client on ``session``; every Cost Explorer client is made here.

    ``client_hook`` is the registry's (``provider_spec("aws").client_hook``), passed by whoever
    binds the resource; it serves sandbox accounts without this module knowing the sandbox.
    """
    client = session.client("ce", endpoint_url=endpoint_url, config=config or client_config())
    if client_hook is not None:
        client_hook(client, endpoint_url)
    return client


def build_cost_explorer_client(
    credentials: AwsAccessKeyCredentials,
    *,
    endpoint_url: str | None = None,
    config: Config | None = None,
    client_hook: ClientHook | None = None,
) -> Any:
    """A ``ce`` client that uses exactly these access keys."""
    return cost_explorer_client(
        static_session(credentials),
        endpoint_url=endpoint_url,
        config=config,
        client_hook=client_hook,
    )
