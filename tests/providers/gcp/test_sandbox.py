"""The BigQuery double itself: the REST paths and BigQuery semantics it claims to cover."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from finops_pipeline.providers.gcp.client import build_bigquery_client
from finops_pipeline.providers.gcp.errors import BillingQueryError
from finops_pipeline.providers.gcp.query import build_cost_query
from finops_pipeline.providers.gcp.sandbox import BigQuerySandbox
from finops_pipeline.providers.gcp.table import PartitionKind, TablePartitioning
from finops_pipeline.sync.ranges import DateRange
from tests.providers.gcp.conftest import PROJECT_A, PROJECT_B, export_row, utc


@pytest.fixture
def raw_client(reader_key):
    clients = []

    def make(export) -> bigquery.Client:
        client = build_bigquery_client(reader_key, export)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_jobs_query_and_paged_get_query_results_return_every_row(make_export, raw_client) -> None:
    rows = [export_row(PROJECT_A, utc(2025, 1, day, 5), float(day)) for day in range(1, 8)]
    export = make_export(rows)
    client = raw_client(export)
    sql = f"""
        SELECT DATE(usage_start_time) AS day, CAST(cost AS NUMERIC) AS cost
        FROM {export.table.sql_reference}
        WHERE project.id = @project ORDER BY day
    """
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("project", "STRING", PROJECT_A)]
    )
    # jobs.query with a first page of 2 rows, then jobs.getQueryResults pages.
    result = client.query_and_wait(sql, job_config=config, page_size=2)
    assert [(row["day"].day, row["cost"]) for row in result] == [
        (day, Decimal(day)) for day in range(1, 8)
    ]
    # jobs.insert, then jobs.get and getQueryResults.
    job = client.query(sql, job_config=config)
    assert len(list(job.result(page_size=3))) == 7
    assert job.total_bytes_billed == 10 * 1024 * 1024
    assert job.total_bytes_processed == 7 * (8 + 8 + 2 + len(PROJECT_A))


def test_numeric_has_nine_places_and_dates_are_utc(make_export, raw_client) -> None:
    export = make_export([export_row(PROJECT_A, utc(2025, 1, 1, 23, 30), 0.1234567891)])
    client = raw_client(export)
    row = next(
        iter(
            client.query_and_wait(
                f"SELECT CAST(cost AS NUMERIC) AS cost, DATE(usage_start_time) AS day, "
                f"DATE(TIMESTAMP_ADD(usage_start_time, INTERVAL 1 HOUR)) AS next_day "
                f"FROM {export.table.sql_reference}"
            )
        )
    )
    assert row["cost"] == Decimal("0.123456789")
    assert row["day"] == dt.date(2025, 1, 1) and row["next_day"] == dt.date(2025, 1, 2)


def test_partitiontime_exists_only_on_ingestion_time_tables(make_export, open_client) -> None:
    export = make_export([export_row(PROJECT_A, utc(2025, 1, 1, 5), 1.0)], partitioning="none")
    client = open_client(export)
    assert client.table_partitioning().kind is PartitionKind.UNPARTITIONED
    wrong = build_cost_query(
        export.table,
        DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 1)),
        TablePartitioning(PartitionKind.INGESTION_TIME, "DAY"),
        project_ids=[PROJECT_A],
    )
    with pytest.raises(BillingQueryError, match="invalidQuery"):
        client.run(wrong)


def test_the_bytes_cap_on_jobs_query_is_a_400_with_the_reason(make_export, raw_client) -> None:
    export = make_export([export_row(PROJECT_A, utc(2025, 1, 1, 5), 1.0)])
    client = raw_client(export)
    config = bigquery.QueryJobConfig(maximum_bytes_billed=1000)
    with pytest.raises(api_exceptions.BadRequest) as caught:
        client.query_and_wait(f"SELECT cost FROM {export.table.sql_reference}", job_config=config)
    assert caught.value.errors[0]["reason"] == "bytesBilledLimitExceeded"
    assert "10485760 or higher required" in caught.value.message


def test_dry_runs_report_bytes_and_bill_nothing(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    export = make_export(
        [export_row(project, utc(2025, 1, 1, 5), 1.0) for project in (PROJECT_A, PROJECT_B)]
    )
    client = open_client(export)
    query = build_cost_query(
        export.table,
        DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 1)),
        client.table_partitioning(),
        project_ids=[PROJECT_A],
    )
    jobs_before = len(bigquery_sandbox.query_jobs())
    estimate = client.dry_run(query)
    assert len(bigquery_sandbox.query_jobs()) == jobs_before
    assert estimate == client.run(query).bytes_processed > 0


def test_unauthenticated_and_unknown_parameters_are_refused(
    bigquery_sandbox: BigQuerySandbox, make_export, raw_client
) -> None:
    export = make_export()
    url = f"{bigquery_sandbox.endpoint}/bigquery/v2/projects/billing-host-01/queries"
    response = requests.post(url, json={"query": "SELECT 1"}, timeout=5)
    assert response.status_code == 401
    with pytest.raises(api_exceptions.BadRequest, match="Query parameter 'missing' not found"):
        raw_client(export).query_and_wait(
            f"SELECT cost FROM {export.table.sql_reference} WHERE cost > @missing"
        )
