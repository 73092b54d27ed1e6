"""The resources a ``cost_data`` run needs, one collector per registered cloud, for tests."""

from __future__ import annotations

import dagster as dg

from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)


def pipeline_resources(
    database_url: str, encryption_key: str
) -> dict[str, dg.ConfigurableResource]:
    """Postgres, the decryptor and every cloud's collector with its defaults (sandbox accounts
    reach their sandbox through the registry's hooks). Adding a cloud adds its line here."""
    return {
        "postgres": PostgresResource(database_url=database_url),
        "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
        "aws_cost_explorer": AwsCostExplorerResource(),
        "azure_cost_management": AzureCostManagementResource(),
        "gcp_billing_export": GcpBillingExportResource(),
    }
