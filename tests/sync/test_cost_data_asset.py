"""cost_data through real Dagster materialisation, real Postgres and moto's Cost Explorer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.assets import cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import account_date_key
from tests.ce_responses import (
    TWO_SERVICES,
    StrictMotoCostExplorer,
    day_result,
    expected_request,
    group,
    paginate,
    queue_moto_pages,
    reset_moto_ce,
    simple_days,
)
from tests.dates import RECENT_START

pytestmark = pytest.mark.integration

START = RECENT_START
SERVICES = TWO_SERVICES


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
    # Dynamic partitions keep insertion order; a range spans the accounts between its ends.
    first, last = account_ids[0], account_ids[-1]
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
            "gcp_billing_export": GcpBillingExportResource(),
            "aws_cost_explorer": AwsCostExplorerResource(),
            "azure_cost_management": AzureCostManagementResource(),
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
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection,
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
    # One query for the range (End exclusive), its pages following the tokens returned.
    last = START + dt.timedelta(days=9)
    assert moto_ce.requests == [
        expected_request(START, last),
        expected_request(START, last, token="page-1"),
        expected_request(START, last, token="page-2"),
    ]
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


def run(database_url, encryption_key, ids, start, days, **kwargs) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return materialize_range(
            database_url,
            encryption_key,
            ids,
            start,
            start + dt.timedelta(days=days - 1),
            instance,
            **kwargs,
        )


def test_rerun_is_identical_and_restatement_updates_in_place(
    aws: None, database_url: str, encryption_key: str, key_ring: KeyRing, connection
) -> None:
    account_id = add_account(connection, key_ring)
    days = simple_days(START, 5, SERVICES)
    queue_moto_pages(paginate(days, per_page=10))
    assert run(database_url, encryption_key, [account_id], START, 5).success
    first = table_rows(connection)

    second = run(database_url, encryption_key, [account_id], START, 5)
    assert table_rows(connection) == first
    metadata = second.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["rows_unchanged"].value == 10
    assert metadata["rows_written"].value == 0

    # AWS restates day 2's EC2 cost and drops day 5 entirely.
    restated = simple_days(START, 4, SERVICES)
    restated[1]["Groups"][0] = group("Amazon EC2", "BoxUsage:t3.micro", "99.5")
    restated.append({**days[4], "Groups": []})
    reset_moto_ce()
    queue_moto_pages(paginate(restated, per_page=10))
    third = run(database_url, encryption_key, [account_id], START, 5)
    rows = table_rows(connection)
    assert len(rows) == 8
    ec2_day2 = [r for r in rows if r[1] == START + dt.timedelta(days=1) and r[2] == "Amazon EC2"]
    assert [r[4] for r in ec2_day2] == [Decimal("99.5")]
    metadata = third.asset_materializations_for_node("cost_data")[0].metadata
    assert (metadata["rows_restated"].value, metadata["rows_removed"].value) == (1, 2)
    count = connection.execute(
        "SELECT count(*), count(DISTINCT (date, service, usage_type)) FROM cost_data"
    ).fetchone()
    assert count == (8, 8)


def test_failure_between_delete_and_insert_keeps_old_rows(
    aws: None, database_url: str, encryption_key: str, key_ring: KeyRing, connection
) -> None:
    account_id = add_account(connection, key_ring)
    queue_moto_pages(paginate(simple_days(START, 3, SERVICES), per_page=10))
    assert run(database_url, encryption_key, [account_id], START, 3).success
    before = table_rows(connection)

    restated = simple_days(START, 3, SERVICES, base="7")
    reset_moto_ce()
    queue_moto_pages(paginate(restated, per_page=10))
    # A real fault inside the load transaction: inserts fail after the window's delete ran.
    connection.execute(
        """
        CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
        CREATE TRIGGER fail_insert BEFORE INSERT ON cost_data
        FOR EACH STATEMENT EXECUTE FUNCTION fail_insert();
        """
    )
    result = run(database_url, encryption_key, [account_id], START, 3, raise_on_error=False)
    assert not result.success
    assert table_rows(connection) == before
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "DatabaseError" in failure.step_failure_data.user_failure_data.description
    assert "old rows are intact" in failure.step_failure_data.user_failure_data.description


def test_two_accounts_in_one_run_each_get_their_own_rows(
    aws: None, database_url: str, encryption_key: str, key_ring: KeyRing, connection
) -> None:
    first = add_account(connection, key_ring, tenant="tenant-a")
    second = add_account(connection, key_ring, tenant="tenant-b")
    # Both accounts share moto's default AWS account, so both requests read the same queue;
    # identical request bodies get identical answers, as Cost Explorer would for one payer.
    queue_moto_pages(paginate(simple_days(START, 4, SERVICES), per_page=10))
    result = run(database_url, encryption_key, [first, second], START, 4)
    assert result.success
    per_account = dict(
        connection.execute(
            "SELECT tenant_id || ':' || cloud_account_id::text, count(*) FROM cost_data GROUP BY 1"
        ).fetchall()
    )
    assert per_account == {f"tenant-a:{first}": 8, f"tenant-b:{second}": 8}
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["accounts"].value == 2
    assert metadata["paid_ce_requests"].value == 2


def test_data_unavailable_deletes_nothing(
    aws: None, database_url: str, encryption_key: str, key_ring: KeyRing, connection, monkeypatch
) -> None:
    account_id = add_account(connection, key_ring)
    queue_moto_pages(paginate(simple_days(START, 2, SERVICES), per_page=10))
    assert run(database_url, encryption_key, [account_id], START, 2).success
    before = table_rows(connection)

    from moto.ce.responses import CostExplorerResponse
    from moto.core.exceptions import JsonRESTError

    def unavailable(self: CostExplorerResponse) -> str:
        # An HTTP 400 with Cost Explorer's JSON error body, parsed by botocore.
        raise JsonRESTError("DataUnavailableException", "Data is not available.")

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", unavailable)
    result = run(database_url, encryption_key, [account_id], START, 2, raise_on_error=False)
    assert table_rows(connection) == before
    assert result.success
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    # The error answered the request (failed requests are free) and no window was replaced.
    assert metadata["paid_ce_requests"].value == 0
    assert metadata["rows_unchanged"].value == 0 and metadata["rows_removed"].value == 0


def test_tiny_huge_and_negative_amounts_arrive_exactly_and_a_rerun_writes_nothing(
    aws: None,
    moto_ce: StrictMotoCostExplorer,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection,
) -> None:
    """1E-12, 28 significant digits and credits, from the Cost Explorer JSON to numeric."""
    account_id = add_account(connection, key_ring)
    amounts = ["1E-12", "1234567890123456.789012345678", "-0.000000000001", "-98765.4321"]
    day = START
    groups = [group(f"Service {i}", "Usage", amount) for i, amount in enumerate(amounts)]
    pages = paginate([day_result(day, groups)], per_page=1)
    queue_moto_pages(pages)
    with dg.instance_for_test() as instance:
        first = materialize_range(database_url, encryption_key, [account_id], day, day, instance)
        reset_moto_ce()
        queue_moto_pages(pages)
        second = materialize_range(database_url, encryption_key, [account_id], day, day, instance)
    stored = connection.execute(
        "SELECT unblended_cost, amortized_cost, net_unblended_cost FROM cost_data ORDER BY service"
    ).fetchall()
    assert stored == [(Decimal(amount),) * 3 for amount in amounts]
    metadata = first.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["total_unblended_cost_USD"].value == str(sum(map(Decimal, amounts)))
    again = second.asset_materializations_for_node("cost_data")[0].metadata
    assert (again["rows_inserted"].value, again["rows_unchanged"].value) == (0, 4)
