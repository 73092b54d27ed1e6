"""Dagster resources: Postgres, the credential decryptor and one cost collector per cloud."""

from __future__ import annotations

import os

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.resources.aws import AwsCostExplorerResource
from finops_pipeline.resources.azure import AzureCostManagementResource
from finops_pipeline.resources.credentials import CredentialDecryptor
from finops_pipeline.resources.gcp import GcpBillingExportResource, gcp_resource_kwargs
from finops_pipeline.resources.postgres import PostgresResource

__all__ = [
    "AwsCostExplorerResource",
    "AzureCostManagementResource",
    "CredentialDecryptor",
    "GcpBillingExportResource",
    "PostgresResource",
    "default_resources",
]


def _env_var_if_set(name: str) -> dg.EnvVar | None:
    # Only the variable's presence is checked at load time; Dagster resolves the value inside
    # the run, and the UI shows the variable's name, never its value.
    return dg.EnvVar(name) if os.environ.get(name) else None


def default_resources(config: FinopsConfig | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources bound from the environment, falling back to the embedded defaults."""
    config = config or FinopsConfig.from_env()
    return {
        "postgres": PostgresResource(database_url=_env_var_if_set("DATABASE_URL")),
        "credential_decryptor": CredentialDecryptor(
            encryption_key=_env_var_if_set("ENCRYPTION_KEY"),
            previous_keys=_env_var_if_set("ENCRYPTION_KEYS_PREVIOUS"),
        ),
        "aws_cost_explorer": AwsCostExplorerResource(
            endpoint_url=config.ce_endpoint_url,
            max_attempts=config.ce_max_attempts,
            # The pipeline's own principal, used only to assume customers' roles.
            pipeline_access_key_id=_env_var_if_set("FINOPS_PIPELINE_AWS_ACCESS_KEY_ID"),
            pipeline_secret_access_key=_env_var_if_set("FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY"),
            pipeline_session_token=_env_var_if_set("FINOPS_PIPELINE_AWS_SESSION_TOKEN"),
            sts_endpoint_url=config.sts_endpoint_url,
        ),
        "azure_cost_management": AzureCostManagementResource(
            month_close_day=config.azure_month_close_day
        ),
        "gcp_billing_export": GcpBillingExportResource(**gcp_resource_kwargs(os.environ)),
    }
