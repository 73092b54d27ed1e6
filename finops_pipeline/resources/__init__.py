"""Dagster resources: Postgres, the credential decryptor and the AWS Cost Explorer client."""

from __future__ import annotations

import os

import dagster as dg

from finops_pipeline.constants import CE_MAX_ATTEMPTS
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.resources.aws import AwsCostExplorerResource
from finops_pipeline.resources.credentials import CredentialDecryptor
from finops_pipeline.resources.postgres import PostgresResource

#: botocore's retries of one throttled or failed Cost Explorer request, before the run's own.
ENV_CE_MAX_ATTEMPTS = "FINOPS_CE_MAX_ATTEMPTS"

__all__ = [
    "AwsCostExplorerResource",
    "CredentialDecryptor",
    "PostgresResource",
    "default_resources",
]


def _env_var_if_set(name: str) -> dg.EnvVar | None:
    # Only the variable's presence is checked at load time; Dagster resolves the value inside
    # the run, and the UI shows the variable's name, never its value.
    return dg.EnvVar(name) if os.environ.get(name) else None


def _ce_max_attempts() -> int:
    text = os.environ.get(ENV_CE_MAX_ATTEMPTS, "").strip()
    if not text:
        return CE_MAX_ATTEMPTS
    if not text.isdigit() or not 1 <= int(text) <= 20:
        raise ConfigurationError(f"{ENV_CE_MAX_ATTEMPTS} must be a whole number from 1 to 20.")
    return int(text)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources bound from the environment, falling back to the embedded defaults."""
    return {
        "postgres": PostgresResource(database_url=_env_var_if_set("DATABASE_URL")),
        "credential_decryptor": CredentialDecryptor(
            encryption_key=_env_var_if_set("ENCRYPTION_KEY"),
            previous_keys=_env_var_if_set("ENCRYPTION_KEYS_PREVIOUS"),
        ),
        "aws_cost_explorer": AwsCostExplorerResource(
            endpoint_url=os.environ.get("FINOPS_CE_ENDPOINT_URL") or None,
            max_attempts=_ce_max_attempts(),
            # The pipeline's own principal, used only to assume customers' roles.
            pipeline_access_key_id=_env_var_if_set("FINOPS_PIPELINE_AWS_ACCESS_KEY_ID"),
            pipeline_secret_access_key=_env_var_if_set("FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY"),
            pipeline_session_token=_env_var_if_set("FINOPS_PIPELINE_AWS_SESSION_TOKEN"),
            sts_endpoint_url=os.environ.get("FINOPS_STS_ENDPOINT_URL") or None,
        ),
    }
