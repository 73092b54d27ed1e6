"""A 13-month pull of a synthetic export: one query for every project, and what it bills."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest

from finops_pipeline.providers.gcp.client import BillingExport, BillingExportClient
from finops_pipeline.providers.gcp.collector import BillingExportCosts, collect_billing_export
from finops_pipeline.providers.gcp.query import build_cost_query
from finops_pipeline.providers.gcp.sandbox import (
    BigQuerySandbox,
    BillingExportGenerator,
    TableRef,
    create_export_table,
    seed_export,
    standard_table_name,
)
from finops_pipeline.providers.gcp.sandbox.engine import MINIMUM_BILLED_PER_TABLE
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.providers.gcp.table import BillingExportTable
from finops_pipeline.sync.ranges import DateRange
from tests.providers.gcp.conftest import BILLING_PROJECT, DATASET, PROJECT_A, PROJECT_B, PROJECT_C

PROJECTS = [PROJECT_A, PROJECT_B, PROJECT_C]
#: Also in the export, never registered.
OTHER_PROJECT = "marketing-site-42"
THIRTEEN_MONTHS = DateRange(dt.date(2025, 1, 1), dt.date(2026, 1, 31))
PULLED_AT = dt.datetime(2026, 2, 2, 6, tzinfo=dt.UTC)
GENERATOR = BillingExportGenerator(seed=11)


@dataclass(frozen=True)
class YearExport:
    export: BillingExport
    #: Each project's net cost, summed exactly (Decimal) from the rows loaded.
    expected_net: dict[str, Decimal]


@pytest.fixture(scope="module")
def year_export(bigquery_sandbox: BigQuerySandbox, reader_key: ServiceAccountKey) -> YearExport:
    table = standard_table_name(GENERATOR.billing_account_id)
    ref = TableRef(BILLING_PROJECT, DATASET, table)
    create_export_table(bigquery_sandbox.engine, ref)
    rows = list(
        GENERATOR.rows(
            [*PROJECTS, OTHER_PROJECT],
            THIRTEEN_MONTHS.start,
            THIRTEEN_MONTHS.end,
            as_of=PULLED_AT,
        )
    )
    expected: dict[str, Decimal] = {}
    for row in rows:
        net = Decimal(repr(row["cost"])) + sum(
            (Decimal(repr(credit["amount"])) for credit in row["credits"]), Decimal(0)
        )
        project = row["project"]["id"]
        expected[project] = expected.get(project, Decimal(0)) + net
    seed_export(bigquery_sandbox.engine, ref, rows)
    bigquery_sandbox.grant(reader_key.client_email, readable_tables=[ref])
    export = BillingExport(
        BillingExportTable.parse(f"{BILLING_PROJECT}.{DATASET}.{table}"),
        "US",
        api_endpoint=bigquery_sandbox.endpoint,
        token_uri=bigquery_sandbox.token_uri,
    )
    return YearExport(export, expected)


@pytest.fixture(scope="module")
def year_client(year_export: YearExport, reader_key: ServiceAccountKey):
    client = BillingExportClient.open(reader_key, year_export.export, retry_deadline_seconds=5)
    yield client
    client.close()


Pulls = tuple[BillingExportCosts, BillingExportCosts, int]


@pytest.fixture(scope="module")
def year_pulls(bigquery_sandbox: BigQuerySandbox, year_client: BillingExportClient) -> Pulls:
    """The 13 months pulled for the three projects, then for one; and the jobs they ran."""
    partitioning = year_client.table_partitioning()
    jobs_before = len(bigquery_sandbox.query_jobs())
    three = collect_billing_export(
        year_client,
        project_ids=PROJECTS,
        window=THIRTEEN_MONTHS,
        as_of=PULLED_AT.date(),
        partitioning=partitioning,
    )
    one = collect_billing_export(
        year_client,
        project_ids=[PROJECT_A],
        window=THIRTEEN_MONTHS,
        as_of=PULLED_AT.date(),
        partitioning=partitioning,
    )
    return three, one, len(bigquery_sandbox.query_jobs()) - jobs_before


def test_thirteen_months_of_three_projects_bill_the_same_bytes_as_one(
    year_export: YearExport, year_pulls: Pulls
) -> None:
    three, one, jobs = year_pulls
    assert jobs == 2
    # Above BigQuery's 10 MiB minimum, so the billed figure is not just the floor.
    assert one.bytes_processed > MINIMUM_BILLED_PER_TABLE
    assert three.bytes_processed == one.bytes_processed
    assert three.bytes_billed == one.bytes_billed
    assert three.bytes_billed % (1024 * 1024) == 0

    # Every registered project got its full history from the one query, exactly.
    for project in PROJECTS:
        parsed = three.for_project(project)
        assert set(parsed.frame["date"]) == set(parsed.estimated_by_day)
        assert len(parsed.estimated_by_day) == THIRTEEN_MONTHS.days
        net = sum(parsed.frame["net_unblended_cost"], Decimal(0))
        assert net == year_export.expected_net[project]
    assert OTHER_PROJECT not in three.by_project
    assert one.for_project(PROJECT_A).frame.equals(three.for_project(PROJECT_A).frame)
    # January's invoice is open on 2 February; December's is closed.
    estimated = three.for_project(PROJECT_A).estimated_by_day
    assert estimated[dt.date(2026, 1, 15)] and not estimated[dt.date(2025, 12, 15)]


def test_one_query_per_project_would_process_the_export_once_per_project(
    year_client: BillingExportClient, year_pulls: Pulls
) -> None:
    shared = year_pulls[0]
    partitioning = year_client.table_partitioning()
    # Dry runs are free and return the bytes a query would process.
    per_project = [
        year_client.dry_run(
            build_cost_query(
                year_client.export.table, THIRTEEN_MONTHS, partitioning, project_ids=[project]
            )
        )
        for project in PROJECTS
    ]
    assert per_project == [shared.bytes_processed] * 3
    assert sum(per_project) == 3 * shared.bytes_processed


def test_partitions_and_columns_are_pruned(
    year_client: BillingExportClient, year_pulls: Pulls
) -> None:
    partitioning = year_client.table_partitioning()
    january = collect_billing_export(
        year_client,
        project_ids=PROJECTS,
        window=DateRange(dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        as_of=PULLED_AT.date(),
        partitioning=partitioning,
    )
    year = year_pulls[0]
    # The lower bound skips the earlier partitions: about a thirteenth of the year's bytes.
    assert 0 < january.bytes_processed < year.bytes_processed / 8
    table_bytes = int(year_client._client.get_table(year_client.export.table.full_name).num_bytes)
    # Unreferenced columns (labels, location, ids, pricing units...) are not read.
    assert year.bytes_processed < table_bytes * 0.8
