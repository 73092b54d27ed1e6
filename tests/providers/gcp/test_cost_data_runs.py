"""GCP projects through the real cost_data asset: real Dagster, real Postgres, the real
BigQuery client against the REST double."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.assets import cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.watermarks import account_watermarks
from finops_pipeline.partitions import PARTITIONS_START_DATE
from finops_pipeline.providers.gcp.client import BillingExport
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
from finops_pipeline.schedules import daily_cost_sync
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import DateRange, account_date_key, split_partition_key
from tests.dates import TODAY
from tests.providers.gcp.conftest import (
    BILLING_PROJECT,
    DATASET,
    PROJECT_A,
    PROJECT_B,
    PROJECT_C,
    credentials_for,
    export_row,
)

pytestmark = pytest.mark.integration

PROJECTS = [PROJECT_A, PROJECT_B, PROJECT_C]
OTHER_PROJECT = "marketing-site-42"
#: The whole partition range: 13 months back to yesterday.
HISTORY = DateRange(PARTITIONS_START_DATE, TODAY - dt.timedelta(days=1))
PULLED_AT = dt.datetime.combine(TODAY, dt.time(6), tzinfo=dt.UTC)
GENERATOR = BillingExportGenerator(seed=29, billing_account_id="0F0F0F-A1A1A1-B2B2B2")


@dataclass(frozen=True)
class HistoryExport:
    export: BillingExport
    ref: TableRef
    expected_net: dict[str, Decimal]
    rows_by_project: dict[str, int]


@pytest.fixture(scope="module")
def history_export(
    bigquery_sandbox: BigQuerySandbox, reader_key_info: dict[str, Any]
) -> HistoryExport:
    """13 months of an export with three registered projects and one other."""
    ref = TableRef(BILLING_PROJECT, DATASET, "gcp_billing_export_v1_0F0F0F_A1A1A1_B2B2B2")
    create_export_table(bigquery_sandbox.engine, ref)
    rows = list(
        GENERATOR.rows([*PROJECTS, OTHER_PROJECT], HISTORY.start, HISTORY.end, as_of=PULLED_AT)
    )
    expected: dict[str, Decimal] = {}
    for row in rows:
        net = Decimal(repr(row["cost"])) + sum(
            (Decimal(repr(credit["amount"])) for credit in row["credits"]), Decimal(0)
        )
        project = row["project"]["id"]
        expected[project] = expected.get(project, Decimal(0)) + net
    seed_export(bigquery_sandbox.engine, ref, rows)
    bigquery_sandbox.grant(reader_key_info["client_email"], readable_tables=[ref])
    export = BillingExport(
        BillingExportTable.parse(f"{ref.project}.{ref.dataset}.{ref.table}"),
        "US",
        api_endpoint=bigquery_sandbox.endpoint,
        token_uri=bigquery_sandbox.token_uri,
    )
    return HistoryExport(export, ref, expected, {})


def resources(database_url: str, encryption_key: str, **gcp: Any) -> dict[str, Any]:
    return {
        "postgres": PostgresResource(database_url=database_url),
        "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
        "aws_cost_explorer": AwsCostExplorerResource(),
        "azure_cost_management": AzureCostManagementResource(),
        "gcp_billing_export": GcpBillingExportResource(retry_deadline_seconds=3, **gcp),
    }


def materialize_range(
    instance: dg.DagsterInstance,
    resource_defs: dict[str, Any],
    account_ids: list[str],
    window: DateRange,
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, account_ids)
    return dg.materialize(
        [cost_data],
        instance=instance,
        resources=resource_defs,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: account_date_key(account_ids[0], window.start),
            ASSET_PARTITION_RANGE_END_TAG: account_date_key(account_ids[-1], window.end),
        },
        raise_on_error=False,
    )


def net_by_account(connection: psycopg.Connection) -> dict[str, Decimal]:
    return {
        row[0]: row[1]
        for row in connection.execute(
            "SELECT cloud_account_id::text, sum(net_unblended_cost) FROM cost_data GROUP BY 1"
        ).fetchall()
    }


def test_a_13_month_backfill_of_3_projects_is_one_run_billing_the_same_bytes_as_one_project(
    bigquery_sandbox: BigQuerySandbox,
    history_export: HistoryExport,
    reader_key_info: dict[str, Any],
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    credentials = credentials_for(history_export.export, reader_key_info)
    registered = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-gcp",
        credentials=credentials,
        projects=[(project, project) for project in PROJECTS],
    )
    ids = [project.account_id for project in registered]
    # Another tenant collects only the first project of the same export.
    solo = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-solo",
        credentials=credentials,
        projects=[(PROJECT_A, PROJECT_A)],
    )[0].account_id
    jobs_before = len(bigquery_sandbox.query_jobs())
    with dg.instance_for_test() as instance:
        three = materialize_range(instance, resources(database_url, encryption_key), ids, HISTORY)
        jobs_three = len(bigquery_sandbox.query_jobs()) - jobs_before
        one = materialize_range(instance, resources(database_url, encryption_key), [solo], HISTORY)
    assert three.success and one.success
    three_meta = three.asset_materializations_for_node("cost_data")[0].metadata
    one_meta = one.asset_materializations_for_node("cost_data")[0].metadata
    # One run, one billing query for the three projects and 13 months.
    assert jobs_three == 1
    assert three_meta["gcp_queries"].value == 1
    billed = three_meta["gcp_bytes_billed"].value
    assert billed == one_meta["gcp_bytes_billed"].value
    assert three_meta["gcp_bytes_processed"].value == one_meta["gcp_bytes_processed"].value
    assert billed >= 10 * 1024 * 1024 and billed % (1024 * 1024) == 0
    # Every project's 13 months are in cost_data, exactly; the unregistered project is not.
    by_account = net_by_account(connection)
    for project in registered:
        assert by_account[project.account_id] == history_export.expected_net[project.project_id]
    assert by_account[solo] == by_account[ids[0]]
    days = connection.execute(
        "SELECT cloud_account_id::text, count(DISTINCT date) FROM cost_data GROUP BY 1"
    ).fetchall()
    assert {count for _, count in days} == {HISTORY.days}
    assert (
        three_meta["dagster/row_count"].value
        == connection.execute(
            "SELECT count(*) FROM cost_data WHERE tenant_id = 'tenant-gcp'"
        ).fetchone()[0]
    )
    # Each day's max(export_time) is stored as loaded.
    marks = account_watermarks(connection, ids[0])
    assert len(marks) == HISTORY.days and not any(mark.moved for mark in marks.values())
    print(
        f"\n13-month backfill, 3 projects: {three_meta['dagster/row_count'].value} rows, "
        f"{three_meta['gcp_bytes_processed'].value} bytes processed, {billed} billed; "
        f"1 project: {one_meta['gcp_bytes_billed'].value} billed"
    )


def _day_net(connection: psycopg.Connection, account_id: str, day: dt.date) -> Decimal:
    row = connection.execute(
        "SELECT sum(net_unblended_cost) FROM cost_data WHERE cloud_account_id = %s AND date = %s",
        (account_id, day),
    ).fetchone()
    return row[0]


def _schedule_windows(
    instance: dg.DagsterInstance, database_url: str, when: dt.datetime
) -> dict[str, tuple[DateRange, str]]:
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources={"postgres": PostgresResource(database_url=database_url)},
    ) as context:
        result = daily_cost_sync(context)
    planned = {}
    for request in [] if isinstance(result, dg.SkipReason) else list(result):
        first, start = split_partition_key(request.tags[ASSET_PARTITION_RANGE_START_TAG])
        _, end = split_partition_key(request.tags[ASSET_PARTITION_RANGE_END_TAG])
        planned[first] = (DateRange(start, end), request.tags["finops/window_reason"])
    return planned


def test_a_late_row_of_an_old_day_is_seen_stored_scheduled_and_re_pulled(
    bigquery_sandbox: BigQuerySandbox,
    make_export,
    reader_key_info: dict[str, Any],
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the trailing window and the export's own changes widen the schedule here.
    monkeypatch.setenv("FINOPS_MONTH_REPULL_UNTIL_DAY", "0")
    first_day, yesterday = TODAY - dt.timedelta(days=14), TODAY - dt.timedelta(days=1)
    old_day, other_old_day = TODAY - dt.timedelta(days=12), TODAY - dt.timedelta(days=9)
    rows = [
        export_row(PROJECT_A, dt.datetime.combine(day, dt.time(5), tzinfo=dt.UTC), 10.0)
        for day in (first_day + dt.timedelta(days=n) for n in range(14))
    ]
    export = make_export(rows)
    account = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-gcp",
        credentials=credentials_for(export, reader_key_info),
        projects=[(PROJECT_A, "shop prod")],
    )[0].account_id
    defs = resources(database_url, encryption_key)
    with dg.instance_for_test() as instance:
        assert materialize_range(instance, defs, [account], DateRange(first_day, yesterday)).success
        assert _day_net(connection, account, old_day) == Decimal("10")

        # Late rows for two old days land in today's partition (a credit and extra usage).
        exported = dt.datetime.combine(TODAY, dt.time(1), tzinfo=dt.UTC)
        late = [
            export_row(
                PROJECT_A,
                dt.datetime.combine(old_day, dt.time(11), tzinfo=dt.UTC),
                2.5,
                credits=[("late credit", -0.5)],
                exported=exported,
            ),
            export_row(
                PROJECT_A,
                dt.datetime.combine(other_old_day, dt.time(23, 30), tzinfo=dt.UTC),
                1.0,
                exported=exported,
            ),
        ]
        seed_export(
            bigquery_sandbox.engine,
            TableRef(BILLING_PROJECT, DATASET, export.table.table),
            late,
        )
        # The daily run reads the trailing days, and checks what was exported since.
        trailing = materialize_range(
            instance, defs, [account], DateRange(TODAY - dt.timedelta(days=3), yesterday)
        )
        assert trailing.success
        metadata = trailing.asset_materializations_for_node("cost_data")[0].metadata
        assert metadata["gcp_queries"].value == 2  # the cost query and the export-time check
        moved = {day for day, mark in account_watermarks(connection, account).items() if mark.moved}
        assert moved == {old_day, other_old_day}
        assert _day_net(connection, account, old_day) == Decimal("10")  # not re-read yet

        # The next tick stretches the project's window back to the oldest moved day.
        window, reason = _schedule_windows(
            instance, database_url, dt.datetime.combine(TODAY, dt.time(6), tzinfo=dt.UTC)
        )[account]
        assert window == DateRange(old_day, yesterday)
        assert "export_time moved on 2 earlier day(s)" in reason
        assert materialize_range(instance, defs, [account], window).success
    assert _day_net(connection, account, old_day) == Decimal("12.0")
    assert _day_net(connection, account, other_old_day) == Decimal("11")
    assert not any(mark.moved for mark in account_watermarks(connection, account).values())


def test_the_bytes_cap_fails_the_project_permanently_naming_the_setting_and_keeps_its_rows(
    bigquery_sandbox: BigQuerySandbox,
    make_export,
    reader_key_info: dict[str, Any],
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    day = TODAY - dt.timedelta(days=5)
    export = make_export(
        [export_row(PROJECT_A, dt.datetime.combine(day, dt.time(5), tzinfo=dt.UTC), 7.0)]
    )
    account = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-gcp",
        credentials=credentials_for(export, reader_key_info),
        projects=[(PROJECT_A, "shop prod")],
    )[0].account_id
    window = DateRange(day, day)
    with dg.instance_for_test() as instance:
        loaded = materialize_range(
            instance, resources(database_url, encryption_key), [account], window
        )
        capped = materialize_range(
            instance,
            resources(database_url, encryption_key, maximum_bytes_billed=1024),
            [account],
            window,
        )
    assert loaded.success and not capped.success
    failure = next(e for e in capped.all_events if e.is_step_failure).step_failure_data
    assert "BytesBilledLimitError" in failure.error.message
    assert "FINOPS_GCP_MAXIMUM_BYTES_BILLED" in failure.error.message
    # Permanent: the retry policy does not repeat it.
    assert not [e for e in capped.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert _day_net(connection, account, day) == Decimal("7")
