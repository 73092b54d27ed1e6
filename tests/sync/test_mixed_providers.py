"""AWS and Azure accounts in one real range run: sandbox clouds behind the real SDKs.

The AWS sandbox answers boto3 through botocore's hook and the Azure sandbox answers
azure-identity and azure-mgmt-costmanagement through an azure-core transport; both are bound by
the registry's hooks for their reserved endpoints, as in ``finops demo``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets import cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.sync_state import outcomes_for_run
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.aws.sandbox import SANDBOX_ENDPOINT_URL
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import DateRange, account_date_key
from finops_pipeline.sync.windows import first_of_month
from tests.azure_sandbox import DEVELOPMENT, NO_READER, PRODUCTION, add_azure_subscription
from tests.cli_sandbox import add_sandbox_account

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(dt.UTC).date()


def open_month_window(days: int = 3) -> DateRange:
    """Complete days of a month Azure still restates: this one, or the last in its first days."""
    start = first_of_month(TODAY) if TODAY.day > days else first_of_month(TODAY, 1)
    return DateRange(start, start + dt.timedelta(days=days - 1))


WINDOW = open_month_window()


@pytest.fixture(autouse=True)
def sandbox_pull(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("FINOPS_SANDBOX_AS_OF", "FINOPS_SANDBOX_SEED", "FINOPS_AZURE_SANDBOX_PAGE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    yield


def run_range(
    database_url: str,
    encryption_key: str,
    account_ids: list[str],
    instance: dg.DagsterInstance,
    window: DateRange = WINDOW,
) -> dg.ExecuteInProcessResult:
    known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
    instance.add_dynamic_partitions(
        ACCOUNTS_PARTITIONS_NAME, [a for a in account_ids if a not in known]
    )
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
            "aws_cost_explorer": AwsCostExplorerResource(max_attempts=1),
            "azure_cost_management": AzureCostManagementResource(),
            "gcp_billing_export": GcpBillingExportResource(),
        },
        tags={
            "dagster/asset_partition_range_start": account_date_key(account_ids[0], window.start),
            "dagster/asset_partition_range_end": account_date_key(account_ids[-1], window.end),
        },
        raise_on_error=False,
    )


def rows_by_account(connection: psycopg.Connection) -> dict[str, tuple[str, int]]:
    return {
        account: (provider, count)
        for account, provider, count in connection.execute(
            "SELECT cloud_account_id::text, provider, count(*) FROM cost_data GROUP BY 1, 2"
        ).fetchall()
    }


def test_an_azure_subscription_failing_does_not_stop_aws_or_the_other_subscription(
    database_url: str, encryption_key: str, key_ring: KeyRing, connection: psycopg.Connection
) -> None:
    aws = add_sandbox_account(database_url, key_ring, "320000000001", tenant="globex")
    production = add_azure_subscription(connection, key_ring, PRODUCTION)
    denied = add_azure_subscription(connection, key_ring, NO_READER)
    ids = [aws, production, denied]

    with dg.instance_for_test() as instance:
        result = run_range(database_url, encryption_key, ids, instance)

    assert not result.success
    loaded = rows_by_account(connection)
    assert set(loaded) == {aws, production}
    assert loaded[aws][0] == "aws" and loaded[production][0] == "azure"
    assert loaded[aws][1] > 0 and loaded[production][1] > 0
    outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, result.run_id)}
    assert outcomes[aws].status == outcomes[production].status == "success"
    assert outcomes[denied].status == "failed"
    assert outcomes[denied].error.startswith("AzureAccessDeniedError: ")
    assert "Cost Management Reader" in outcomes[denied].error
    failure = next(e for e in result.all_events if e.is_step_failure)
    data = failure.step_failure_data.user_failure_data
    assert data.description.startswith("1 of 3 accounts failed; the other 2 were loaded.")
    metadata = {key: value.value for key, value in data.metadata.items()}
    # One whole-month window, as ActualCost and AmortizedCost, and its ungrouped ActualCost
    # total for the reconciliation: 3 requests, 1 QPU each.
    assert metadata["azure_requests"] == 3
    assert metadata["azure_qpu_consumed"] == 3.0
    assert metadata["paid_ce_requests"] >= 1
    estimated = connection.execute(
        "SELECT bool_and(is_estimated), count(DISTINCT currency) FROM cost_data "
        "WHERE provider = 'azure'"
    ).fetchone()
    assert estimated == (True, 1)  # an open month is estimated throughout


def test_aws_failing_does_not_stop_azure(
    database_url: str, encryption_key: str, key_ring: KeyRing, connection: psycopg.Connection
) -> None:
    production = add_azure_subscription(connection, key_ring, PRODUCTION)
    # A key id the sandbox does not know: AWS refuses it as it would a revoked key.
    revoked = register_account(
        connection,
        key_ring,
        tenant_id="globex",
        name="revoked",
        provider="aws",
        provider_account_id="320000000002",
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAREVOKEDKEY000001", secret_access_key=Secret("revoked-secret-1")
        ),
        endpoint_url=SANDBOX_ENDPOINT_URL,
    )
    development = add_azure_subscription(connection, key_ring, DEVELOPMENT)
    ids = [production, revoked, development]

    with dg.instance_for_test() as instance:
        result = run_range(database_url, encryption_key, ids, instance)

    assert not result.success
    assert set(rows_by_account(connection)) == {production, development}
    outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, result.run_id)}
    assert outcomes[revoked].status == "failed"
    assert outcomes[revoked].error.startswith("ProviderAccessDeniedError: AWS denied")
    for azure_account in (production, development):
        assert outcomes[azure_account].status == "success"
        assert outcomes[azure_account].rows_in_window > 0
