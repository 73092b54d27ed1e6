"""cost_data through real Dagster materialisation, real Postgres and moto's Cost Explorer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from moto import mock_aws

from finops_pipeline.assets import cost_data
from finops_pipeline.credentials import AwsAccessKeyCredentials, Secret
from finops_pipeline.crypto import KeyRing
from finops_pipeline.db.accounts import register_account
from finops_pipeline.partition_keys import account_date_key
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    CredentialDecryptor,
    PostgresResource,
)
from finops_pipeline.settings import ACCOUNTS_PARTITIONS_NAME
from tests.ce_responses import paginate, queue_moto_pages, simple_days

pytestmark = pytest.mark.integration

START = dt.date(2025, 3, 1)
SERVICES = [("Amazon EC2", "BoxUsage:t3.micro"), ("Amazon S3", "TimedStorage-ByteHrs")]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def add_account(connection: psycopg.Connection, ring: KeyRing, tenant: str = "tenant-a") -> str:
    return register_account(
        connection,
        ring,
        tenant_id=tenant,
        name=f"{tenant} prod",
        provider="aws",
        provider_account_id="123456789012",
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("s3cr3t-value-xyz")
        ),
    )


def materialize_range(
    database_url: str,
    encryption_key: str,
    account_ids: list[str],
    start: dt.date,
    end: dt.date,
    instance: dg.DagsterInstance,
    *,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, account_ids)
    first, last = sorted(account_ids)[0], sorted(account_ids)[-1]
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
            "aws_cost_explorer": AwsCostExplorerResource(),
        },
        tags={
            ASSET_PARTITION_RANGE_START_TAG: account_date_key(first, start),
            ASSET_PARTITION_RANGE_END_TAG: account_date_key(last, end),
        },
        raise_on_error=raise_on_error,
    )


def table_rows(connection: psycopg.Connection) -> list[tuple]:
    return connection.execute(
        "SELECT cloud_account_id::text, date, service, usage_type, unblended_cost, is_estimated "
        "FROM cost_data ORDER BY 1, 2, 3, 4"
    ).fetchall()


def test_range_run_loads_every_day_once_and_reports_metadata(
    aws: None, database_url: str, encryption_key: str, key_ring: KeyRing, connection
) -> None:
    account_id = add_account(connection, key_ring)
    queue_moto_pages(paginate(simple_days(START, 10, SERVICES), per_page=4))

    with dg.instance_for_test() as instance:
        result = materialize_range(
            database_url,
            encryption_key,
            [account_id],
            START,
            START + dt.timedelta(days=9),
            instance,
        )
    assert result.success
    rows = table_rows(connection)
    assert len(rows) == 20
    assert {row[1] for row in rows} == {START + dt.timedelta(days=i) for i in range(10)}
    assert rows[0][4] == Decimal("1.25")  # exact decimal, day 1, first service
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["dagster/row_count"].value == 20
    assert metadata["paid_ce_requests"].value == 3  # 10 days over pages of 4
    assert metadata["days_final"].value == 10
    assert metadata["total_unblended_cost_USD"].value == str(
        sum(Decimal("1.25") * (d + 1) * 2 + 1 for d in range(10))
    )
