"""GCP reconciliation through real Dagster: the cost query's own per-day totals, stored with
the load and compared by the reconciliation check; real Postgres, the real BigQuery client
against the REST double, and real damage to the rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.assets import COST_DATA_CHECKS, cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.definitions import defs
from finops_pipeline.providers.gcp.client import BillingExport
from finops_pipeline.providers.gcp.collector import parse_provider_day_totals
from finops_pipeline.providers.gcp.errors import BillingDataError
from finops_pipeline.providers.gcp.onboarding import register_billing_export
from finops_pipeline.providers.gcp.sandbox import (
    BigQuerySandbox,
    BillingExportGenerator,
    TableRef,
    create_export_table,
    seed_export,
)
from finops_pipeline.providers.gcp.table import BillingExportTable
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import DateRange, account_date_key
from tests.dates import TODAY
from tests.providers.gcp.conftest import (
    BILLING_PROJECT,
    DATASET,
    PROJECT_A,
    PROJECT_B,
    credentials_for,
)

pytestmark = pytest.mark.integration

WINDOW = DateRange(TODAY - dt.timedelta(days=40), TODAY - dt.timedelta(days=1))
PULLED_AT = dt.datetime.combine(TODAY, dt.time(6), tzinfo=dt.UTC)
GENERATOR = BillingExportGenerator(seed=41, billing_account_id="0A0A0A-B1B1B1-C2C2C2")


@pytest.fixture(scope="module")
def export(bigquery_sandbox: BigQuerySandbox, reader_key_info: dict[str, Any]) -> BillingExport:
    ref = TableRef(BILLING_PROJECT, DATASET, "gcp_billing_export_v1_0A0A0A_B1B1B1_C2C2C2")
    create_export_table(bigquery_sandbox.engine, ref)
    rows = GENERATOR.rows([PROJECT_A, PROJECT_B], WINDOW.start, WINDOW.end, as_of=PULLED_AT)
    seed_export(bigquery_sandbox.engine, ref, rows)
    bigquery_sandbox.grant(reader_key_info["client_email"], readable_tables=[ref])
    return BillingExport(
        BillingExportTable.parse(f"{ref.project}.{ref.dataset}.{ref.table}"),
        "US",
        api_endpoint=bigquery_sandbox.endpoint,
        token_uri=bigquery_sandbox.token_uri,
    )


def resources(database_url: str, encryption_key: str) -> dict[str, Any]:
    return {
        "postgres": PostgresResource(database_url=database_url),
        "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
        "aws_cost_explorer": AwsCostExplorerResource(),
        "azure_cost_management": AzureCostManagementResource(),
        "gcp_billing_export": GcpBillingExportResource(retry_deadline_seconds=3),
    }


def per_account(evaluation: dg.AssetCheckEvaluation) -> dict[str, str]:
    return dict(evaluation.metadata["per_account"].value)  # type: ignore[arg-type]


def test_gcp_projects_reconcile_from_the_cost_query_itself_and_fail_on_an_altered_row(
    bigquery_sandbox: BigQuerySandbox,
    export: BillingExport,
    reader_key_info: dict[str, Any],
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    registered = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-recon",
        credentials=credentials_for(export, reader_key_info),
        projects=[(PROJECT_A, PROJECT_A), (PROJECT_B, PROJECT_B)],
    )
    ids = [project.account_id for project in registered]
    jobs_before = len(bigquery_sandbox.query_jobs())
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
        result = dg.materialize(
            [cost_data, *COST_DATA_CHECKS],
            instance=instance,
            resources=resources(database_url, encryption_key),
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], WINDOW.start),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(ids[-1], WINDOW.end),
            },
        )
        assert result.success
        metadata = result.asset_materializations_for_node("cost_data")[0].metadata
        # The totals ride on the cost query: one job for both projects, nothing paid.
        assert metadata["gcp_queries"].value == 1
        assert len(bigquery_sandbox.query_jobs()) - jobs_before == 1
        assert metadata["paid_reconciliation_requests"].value == 0
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        reconciliation = evaluations["reconciliation"]
        assert reconciliation.passed, reconciliation.description
        assert reconciliation.metadata["accounts_not_reconciled"].value == 0
        assert sorted(per_account(reconciliation)) == sorted(ids)
        # The stored totals are the export's, not cost_data's sums read back.
        stored = connection.execute(
            "SELECT cloud_account_id::text, count(DISTINCT date), sum(unblended_cost) "
            "FROM cost_provider_totals GROUP BY 1 ORDER BY 1"
        ).fetchall()
        loaded = connection.execute(
            "SELECT cloud_account_id::text, count(DISTINCT date), sum(unblended_cost) "
            "FROM cost_data GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [row[0] for row in stored] == sorted(ids)
        assert [row[1] for row in stored] == [row[1] for row in loaded]
        for (_, _, theirs), (_, _, ours) in zip(stored, loaded, strict=True):
            assert theirs > 0 and abs(theirs - ours) <= Decimal("0.01")

        altered, emptied = ids
        day = WINDOW.start + dt.timedelta(days=3)
        connection.execute(
            "UPDATE cost_data SET unblended_cost = unblended_cost + 0.05 WHERE ctid = (SELECT "
            "ctid FROM cost_data WHERE cloud_account_id = %s AND date = %s LIMIT 1)",
            (altered, day),
        )
        assert (
            connection.execute(
                "DELETE FROM cost_data WHERE cloud_account_id = %s AND date = %s", (emptied, day)
            ).rowcount
            > 0
        )
        alone = defs.resolve_job_def("cost_data_checks_job").execute_in_process(
            instance=instance, resources=resources(database_url, encryption_key)
        )
    checks = {e.check_name: e for e in alone.get_asset_check_evaluations()}
    failed = checks["reconciliation"]
    assert not failed.passed
    problems = per_account(failed)
    currency = connection.execute(
        "SELECT DISTINCT currency FROM cost_data WHERE cloud_account_id = %s", (altered,)
    ).fetchone()[0]
    assert problems[altered].startswith(f"{day:%Y-%m} {currency}: loaded ")
    assert problems[altered].endswith("(difference +0.050000000)")
    assert problems[emptied].startswith(f"{day:%Y-%m} {currency}: loaded ")


def test_two_groups_disagreeing_on_their_day_total_are_refused() -> None:
    day = dt.date(2026, 3, 1)
    rows = [
        {"project_id": PROJECT_A, "usage_date": day, "currency": "USD",
         "provider_day_cost": Decimal("1.5")},
        {"project_id": PROJECT_A, "usage_date": day, "currency": "USD",
         "provider_day_cost": Decimal("1.6")},
    ]  # fmt: skip
    with pytest.raises(BillingDataError, match="two different totals"):
        parse_provider_day_totals(rows, project_ids=[PROJECT_A])
    totals = parse_provider_day_totals(rows[:1] * 2, project_ids=[PROJECT_A, PROJECT_B])
    assert totals == {PROJECT_A: {(day, "USD"): Decimal("1.5")}, PROJECT_B: {}}
