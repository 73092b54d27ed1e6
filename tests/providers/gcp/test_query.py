"""Pure tests: table names, partitioning detection and the billing query's text and parameters."""

from __future__ import annotations

import datetime as dt

import pytest

from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.gcp.errors import BillingTableNameError, PartitioningError
from finops_pipeline.providers.gcp.query import (
    build_cost_query,
    build_location_query,
    build_watermark_query,
)
from finops_pipeline.providers.gcp.table import (
    BillingExportTable,
    PartitionKind,
    TablePartitioning,
    validate_location,
    validate_project_id,
)
from finops_pipeline.sync.ranges import DateRange

TABLE = BillingExportTable.parse(
    "billing-host-01.cloud_billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9"
)
INGESTION = TablePartitioning.from_table_resource({"timePartitioning": {"type": "DAY"}})
JANUARY = DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 31))


@pytest.mark.parametrize(
    "name",
    [
        "billing-host-01.cloud_billing.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9",
        "billing-host-01.cloud_billing.gcp_billing_export_resource_v1_01A2B3-C4D5E6-F7A8B9",
        "example.com:billing-host.billing.export_view",
    ],
)
def test_plain_table_names_are_accepted(name: str) -> None:
    table = BillingExportTable.parse(name)
    assert table.full_name == name
    assert table.sql_reference == f"`{name}`"


@pytest.mark.parametrize(
    "name",
    [
        "billing-host-01.cloud_billing.t` WHERE 1=1 --",
        "billing-host-01.cloud_billing.t`; DROP TABLE x; --",
        "billing-host-01.cloud_billing.t UNION ALL SELECT * FROM secrets.keys",
        "billing-host-01.cloud_billing.t\n-- comment",
        "billing-host-01.cloud_billing.t/*x*/",
        "billing-host-01.cloud_billing",
        "billing-host-01.cloud_billing.t.extra",
        "`billing-host-01.cloud_billing.t`",
        "billing-host-01.cloud_billing.*",
        "billing-host-01.cloud_billing.gcp_billing_export_v1_*",
        "BILLING-HOST.cloud_billing.t",
        "billing-host-01.cloud-billing.t",
        "billing-host-01.cloud_billing.tаble",  # Cyrillic a
        " billing-host-01.cloud_billing.t",
        "",
    ],
)
def test_hostile_table_names_are_refused_with_a_typed_error(name: str) -> None:
    with pytest.raises(BillingTableNameError) as caught:
        BillingExportTable.parse(name)
    assert isinstance(caught.value, ConfigurationError)
    assert "\n" not in str(caught.value)
    # The refused text is not echoed back into messages or logs.
    assert name.strip() not in str(caught.value) or not name.strip()


def test_project_ids_and_locations_are_checked() -> None:
    assert validate_project_id("shop-prod-1234") == "shop-prod-1234"
    assert validate_location("europe-west1") == "europe-west1"
    for bad in ("Shop", "a", "shop-", "shop prod", "x' OR '1'='1"):
        with pytest.raises(ConfigurationError):
            validate_project_id(bad)
    for bad in ("US; DROP", "", "eu west"):
        with pytest.raises(ConfigurationError):
            validate_location(bad)


@pytest.mark.parametrize(
    ("resource", "kind", "granularity", "field"),
    [
        ({"timePartitioning": {"type": "DAY"}}, PartitionKind.INGESTION_TIME, "DAY", None),
        ({"timePartitioning": {"type": "HOUR"}}, PartitionKind.INGESTION_TIME, "HOUR", None),
        (
            {"timePartitioning": {"type": "DAY", "field": "usage_start_time"}},
            PartitionKind.TIME_COLUMN,
            "DAY",
            "usage_start_time",
        ),
        ({"rangePartitioning": {"field": "n"}}, PartitionKind.INTEGER_RANGE, None, "n"),
        ({}, PartitionKind.UNPARTITIONED, None, None),
    ],
)
def test_partitioning_is_read_from_the_table_resource(
    resource: dict, kind: PartitionKind, granularity: str | None, field: str | None
) -> None:
    partitioning = TablePartitioning.from_table_resource(resource)
    assert (partitioning.kind, partitioning.granularity, partitioning.field) == (
        kind,
        granularity,
        field,
    )


def test_the_partition_lower_bound_is_truncated_to_the_partition_size() -> None:
    day = dt.date(2025, 3, 17)
    monthly = TablePartitioning(PartitionKind.INGESTION_TIME, "MONTH")
    assert monthly.partition_floor(day) == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    yearly = TablePartitioning(PartitionKind.INGESTION_TIME, "YEAR")
    assert yearly.partition_floor(day) == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert INGESTION.partition_floor(day) == dt.datetime(2025, 3, 17, tzinfo=dt.UTC)


def test_the_cost_query_binds_every_value_and_bounds_partitions_from_below_only() -> None:
    query = build_cost_query(
        TABLE, JANUARY, INGESTION, project_ids=["shop-prod-1234", "data-lake-9001"]
    )
    sql = query.sql
    assert "_PARTITIONTIME >= @partition_start" in sql
    assert "_PARTITIONTIME <" not in sql and "_PARTITIONTIME <=" not in sql
    assert "project.id IN UNNEST(@project_ids)" in sql
    assert "UNNEST(credits) AS credit" in sql and ", UNNEST(credits)" not in sql
    for literal in ("2025", "shop-prod-1234", "data-lake-9001"):
        assert literal not in sql
    assert query.parameter("usage_start").value == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert query.parameter("usage_end").value == dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    assert query.parameter("partition_start").value == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert query.parameter("project_ids").value == ["data-lake-9001", "shop-prod-1234"]
    assert query.parameter("project_ids").array


def test_the_cost_query_text_does_not_depend_on_the_projects_or_dates() -> None:
    one = build_cost_query(TABLE, JANUARY, INGESTION, project_ids=["shop-prod-1234"])
    three = build_cost_query(
        TABLE,
        DateRange(dt.date(2024, 1, 1), dt.date(2025, 1, 31)),
        INGESTION,
        project_ids=["shop-prod-1234", "shop-staging-77", "data-lake-9001"],
    )
    assert one.sql == three.sql


def test_tables_without_ingestion_time_partitions_fall_back_or_fail_clearly() -> None:
    unpartitioned = build_cost_query(
        TABLE, JANUARY, TablePartitioning(PartitionKind.UNPARTITIONED), project_ids=None
    )
    assert "_PARTITIONTIME" not in unpartitioned.sql
    assert "usage_start_time >= @usage_start" in unpartitioned.sql
    assert "IN UNNEST(@project_ids)" not in unpartitioned.sql
    assert any("whole table" in note for note in unpartitioned.notes)

    by_usage = build_cost_query(
        TABLE,
        JANUARY,
        TablePartitioning(PartitionKind.TIME_COLUMN, "DAY", "usage_start_time"),
        project_ids=None,
    )
    assert "_PARTITIONTIME" not in by_usage.sql

    by_export = build_cost_query(
        TABLE,
        JANUARY,
        TablePartitioning(PartitionKind.TIME_COLUMN, "DAY", "export_time"),
        project_ids=None,
    )
    assert "export_time >= @partition_start" in by_export.sql

    with pytest.raises(PartitioningError, match="requires a filter"):
        build_cost_query(
            TABLE,
            JANUARY,
            TablePartitioning(
                PartitionKind.INTEGER_RANGE, None, "n", require_partition_filter=True
            ),
            project_ids=None,
        )


def test_project_ids_are_validated_even_though_they_are_parameters() -> None:
    with pytest.raises(ConfigurationError):
        build_cost_query(TABLE, JANUARY, INGESTION, project_ids=["x') OR TRUE --"])


def test_the_watermark_query_scans_only_partitions_loaded_since_the_last_check() -> None:
    query = build_watermark_query(
        TABLE,
        INGESTION,
        exported_since=dt.datetime(2025, 2, 10, 6, tzinfo=dt.UTC),
        usage_start=dt.date(2024, 1, 1),
        project_ids=["shop-prod-1234"],
    )
    assert query.parameter("partition_start").value == dt.datetime(2025, 2, 10, tzinfo=dt.UTC)
    assert "export_time >= @exported_since" in query.sql
    assert "MAX(export_time)" in query.sql


def test_the_location_query_reads_one_project_s_recent_partitions_and_binds_every_value() -> None:
    query = build_location_query(
        TABLE, INGESTION, project_id="shop-prod-1234", usage_start=dt.date(2025, 1, 2)
    )
    sql = query.sql
    assert "SELECT DISTINCT" in sql and "location.zone AS zone" in sql
    assert "_PARTITIONTIME >= @partition_start" in sql
    assert "project.id IN UNNEST(@project_ids)" in sql
    for literal in ("2025", "shop-prod-1234"):
        assert literal not in sql
    assert query.parameter("usage_start").value == dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    assert query.parameter("partition_start").value == dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    assert query.parameter("project_ids").value == ["shop-prod-1234"]
    with pytest.raises(ConfigurationError):
        build_location_query(TABLE, INGESTION, project_id="Shop Prod!", usage_start=dt.date.today())
