"""One range run holding AWS accounts and GCP projects: one provider failing doesn't stop the
other. Real Dagster, real Postgres, moto's Cost Explorer and the BigQuery REST double."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import psycopg
import pytest

from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.sync_state import outcomes_for_run
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.gcp.onboarding import register_billing_export
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.outcomes import SyncStatus
from finops_pipeline.sync.ranges import DateRange
from tests.ce_responses import TWO_SERVICES, paginate, queue_moto_pages, simple_days
from tests.dates import RECENT_START
from tests.providers.gcp.conftest import PROJECT_A, PROJECT_B, credentials_for, export_row
from tests.providers.gcp.test_cost_data_runs import materialize_range, resources

pytestmark = pytest.mark.integration

WINDOW = DateRange(RECENT_START, RECENT_START + dt.timedelta(days=2))


def _gcp_rows() -> list[dict[str, Any]]:
    return [
        export_row(project, dt.datetime.combine(day, dt.time(5), tzinfo=dt.UTC), 3.0)
        for project in (PROJECT_A, PROJECT_B)
        for day in (WINDOW.start + dt.timedelta(days=n) for n in range(WINDOW.days))
    ]


def _aws_account(connection: psycopg.Connection, ring: KeyRing) -> str:
    return register_account(
        connection,
        ring,
        tenant_id="tenant-mixed",
        name="aws prod",
        provider="aws",
        provider_account_id="123456789012",
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("s3cr3t-value-xyz")
        ),
    )


def _rows_by_provider(connection: psycopg.Connection) -> dict[str, int]:
    return dict(
        connection.execute("SELECT provider, count(*) FROM cost_data GROUP BY 1").fetchall()
    )


def _statuses(connection: psycopg.Connection, run_id: str) -> dict[str, SyncStatus]:
    return {o.cloud_account_id: o.status for o in outcomes_for_run(connection, run_id)}


def test_gcp_failing_does_not_stop_aws(
    aws: None,
    make_export,
    reader_key_info: dict[str, Any],
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    aws_account = _aws_account(connection, key_ring)
    # The service account was never granted the table: BigQuery's 403, permanent.
    export = make_export(_gcp_rows(), readable=False)
    gcp_accounts = [
        project.account_id
        for project in register_billing_export(
            connection,
            key_ring,
            tenant_id="tenant-mixed",
            credentials=credentials_for(export, reader_key_info),
            projects=[(PROJECT_A, "a"), (PROJECT_B, "b")],
        )
    ]
    queue_moto_pages(paginate(simple_days(WINDOW.start, WINDOW.days, TWO_SERVICES), per_page=10))
    with dg.instance_for_test() as instance:
        result = materialize_range(
            instance,
            resources(database_url, encryption_key),
            [aws_account, *gcp_accounts],
            WINDOW,
        )
    assert not result.success
    assert _rows_by_provider(connection) == {"aws": WINDOW.days * len(TWO_SERVICES)}
    statuses = _statuses(connection, result.run_id)
    assert statuses[aws_account] == SyncStatus.SUCCESS
    assert {statuses[a] for a in gcp_accounts} == {SyncStatus.FAILED}
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "2 of 3 accounts failed" in message and "GcpAccessDeniedError" in message
    assert "BigQuery Data Viewer" in message


def test_aws_failing_does_not_stop_gcp(
    aws: None,
    make_export,
    reader_key_info: dict[str, Any],
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    aws_account = _aws_account(connection, key_ring)
    # Its ciphertext was tampered with: a typed, permanent credential error.
    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = "
        "set_byte(credentials_encrypted, 25, get_byte(credentials_encrypted, 25) # 1) "
        "WHERE id = %s",
        (aws_account,),
    )
    export = make_export(_gcp_rows())
    gcp_accounts = [
        project.account_id
        for project in register_billing_export(
            connection,
            key_ring,
            tenant_id="tenant-mixed",
            credentials=credentials_for(export, reader_key_info),
            projects=[(PROJECT_A, "a"), (PROJECT_B, "b")],
        )
    ]
    with dg.instance_for_test() as instance:
        result = materialize_range(
            instance,
            resources(database_url, encryption_key),
            [aws_account, *gcp_accounts],
            WINDOW,
        )
    assert not result.success
    assert _rows_by_provider(connection) == {"gcp": 2 * WINDOW.days}
    statuses = _statuses(connection, result.run_id)
    assert statuses[aws_account] == SyncStatus.FAILED
    assert {statuses[a] for a in gcp_accounts} == {SyncStatus.SUCCESS}
    metadata = next(
        e for e in result.all_events if e.is_step_failure
    ).step_failure_data.user_failure_data.metadata
    # The two projects shared one billing query.
    assert metadata["gcp_queries"].value == 1
