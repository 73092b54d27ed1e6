"""The resources a ``cost_data`` run needs, one collector per registered cloud, and runs of
the account-partitioned assets over them, for tests."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from finops_pipeline.assets.recommendations import cost_recommendations
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
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


def refresh_recommendations(
    database_url: str,
    encryption_key: str,
    instance: dg.DagsterInstance,
    accounts: list[str],
    overrides: Mapping[str, dg.ConfigurableResource] | None = None,
) -> dg.ExecuteInProcessResult:
    """``cost_recommendations`` over ``accounts`` as one single-run range, as a backfill of
    several account partitions runs it, with ``overrides`` in place of the default resources;
    failures are returned, not raised."""
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, accounts)
    return dg.materialize(
        [cost_recommendations],
        instance=instance,
        resources={**pipeline_resources(database_url, encryption_key), **(overrides or {})},
        tags={
            ASSET_PARTITION_RANGE_START_TAG: accounts[0],
            ASSET_PARTITION_RANGE_END_TAG: accounts[-1],
        },
        raise_on_error=False,
    )
