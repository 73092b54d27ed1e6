"""The billing query through the real google-cloud-bigquery client, executed by the sandbox."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from finops_pipeline.providers.gcp.collector import collect_billing_export, read_watermarks
from finops_pipeline.providers.gcp.query import build_cost_query
from finops_pipeline.providers.gcp.restatement import moved_days, repull_plan
from finops_pipeline.providers.gcp.sandbox import (
    BigQuerySandbox,
    BillingExportGenerator,
    seed_export,
)
from finops_pipeline.providers.gcp.sandbox.engine import TableRef
from finops_pipeline.providers.gcp.table import TablePartitioning
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.windows import SyncPolicy
from tests.providers.gcp.conftest import (
    BILLING_PROJECT,
    DATASET,
    PROJECT_A,
    PROJECT_B,
    PROJECT_C,
    export_row,
    utc,
)

DAY = dt.date(2025, 1, 10)
AS_OF = dt.date(2025, 3, 1)


def _one_day(day: dt.date = DAY) -> DateRange:
    return DateRange(day, day)


def test_zero_one_and_two_credits_give_the_right_net_without_duplication(
    make_export, open_client
) -> None:
    export = make_export(
        [
            export_row(PROJECT_A, utc(2025, 1, 10, 1), 10.0),
            export_row(PROJECT_A, utc(2025, 1, 10, 2), 20.0, credits=[("sud", -2.5)]),
            export_row(
                PROJECT_A, utc(2025, 1, 10, 3), 40.0, credits=[("sud", -4.0), ("promo", -1.25)]
            ),
        ]
    )
    costs = collect_billing_export(
        open_client(export), project_ids=[PROJECT_A], window=_one_day(), as_of=AS_OF
    )
    frame = costs.for_project(PROJECT_A).frame
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["unblended_cost"] == Decimal("70")
    assert row["net_unblended_cost"] == Decimal("62.25")
    assert row["amortized_cost"] == row["net_unblended_cost"]
    assert row["usage_quantity"] == Decimal("10800")
    assert all(
        isinstance(row[column], Decimal)
        for column in ("unblended_cost", "net_unblended_cost", "usage_quantity")
    )


def test_the_comma_join_the_query_avoids_would_duplicate_costs_in_the_sandbox_too(
    make_export, open_client
) -> None:
    """The sandbox runs UNNEST as BigQuery does, so it can catch the comma-join mistake."""
    export = make_export(
        [
            export_row(PROJECT_A, utc(2025, 1, 10, 1), 10.0),
            export_row(
                PROJECT_A, utc(2025, 1, 10, 3), 40.0, credits=[("sud", -4.0), ("promo", -1.25)]
            ),
        ]
    )
    client = open_client(export)
    query = build_cost_query(
        export.table, _one_day(), client.table_partitioning(), project_ids=[PROJECT_A]
    )
    naive_sql = f"""
        SELECT SUM(cost + credit.amount) AS net, SUM(cost) AS gross
        FROM {export.table.sql_reference}, UNNEST(credits) AS credit
        WHERE usage_start_time >= @usage_start AND usage_start_time < @usage_end
          AND _PARTITIONTIME >= @partition_start AND project.id IN UNNEST(@project_ids)
    """
    outcome = client.run(dataclasses.replace(query, sql=naive_sql))
    # The 40.00 row is counted once per credit and the 10.00 row (no credit) vanishes.
    assert outcome.rows == [{"net": 74.75, "gross": 80.0}]


def test_rows_at_23_30_and_00_30_utc_land_on_different_days(make_export, open_client) -> None:
    export = make_export(
        [
            export_row(PROJECT_A, utc(2025, 1, 10, 23, 30), 1.5),
            export_row(PROJECT_A, utc(2025, 1, 11, 0, 30), 2.25),
        ]
    )
    client = open_client(export)
    both = collect_billing_export(
        client,
        project_ids=[PROJECT_A],
        window=DateRange(DAY, DAY + dt.timedelta(days=1)),
        as_of=AS_OF,
    )
    by_day = dict(
        zip(
            both.for_project(PROJECT_A).frame["date"],
            both.for_project(PROJECT_A).frame["unblended_cost"],
            strict=True,
        )
    )
    assert by_day == {DAY: Decimal("1.5"), DAY + dt.timedelta(days=1): Decimal("2.25")}
    only_first = collect_billing_export(
        client, project_ids=[PROJECT_A], window=_one_day(), as_of=AS_OF
    )
    assert list(only_first.for_project(PROJECT_A).frame["unblended_cost"]) == [Decimal("1.5")]


def test_one_query_feeds_every_registered_project_and_no_other(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    export = make_export(
        [
            export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0),
            export_row(PROJECT_B, utc(2025, 1, 10, 5), 2.0),
            export_row(PROJECT_C, utc(2025, 1, 10, 5), 4.0),
            export_row("unregistered-999", utc(2025, 1, 10, 5), 8.0),
        ]
    )
    client = open_client(export)
    partitioning = client.table_partitioning()
    jobs_before = len(bigquery_sandbox.query_jobs())
    costs = collect_billing_export(
        client,
        project_ids=[PROJECT_A, PROJECT_B, PROJECT_C],
        window=_one_day(),
        as_of=AS_OF,
        partitioning=partitioning,
    )
    assert len(bigquery_sandbox.query_jobs()) == jobs_before + 1
    totals = {
        project: sum(parsed.frame["unblended_cost"], Decimal(0))
        for project, parsed in costs.by_project.items()
    }
    assert totals == {PROJECT_A: Decimal(1), PROJECT_B: Decimal(2), PROJECT_C: Decimal(4)}
    assert costs.bytes_processed > 0
    assert costs.bytes_billed >= costs.bytes_processed


def test_a_late_row_in_a_newer_partition_updates_an_old_day(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    export = make_export([export_row(PROJECT_A, utc(2025, 1, 10, 5), 5.0)])
    client = open_client(export)
    first = collect_billing_export(client, project_ids=[PROJECT_A], window=_one_day(), as_of=AS_OF)
    assert first.watermarks == {DAY: utc(2025, 1, 10, 9)}

    # Four days later the export adds a row for the 10th, in the partition of the 14th.
    late = export_row(PROJECT_A, utc(2025, 1, 10, 6), 3.0, exported=utc(2025, 1, 14, 2))
    ref = TableRef(BILLING_PROJECT, DATASET, export.table.table)
    seed_export(bigquery_sandbox.engine, ref, [late])
    second = collect_billing_export(client, project_ids=[PROJECT_A], window=_one_day(), as_of=AS_OF)
    assert list(second.for_project(PROJECT_A).frame["unblended_cost"]) == [Decimal(8)]
    assert second.watermarks == {DAY: utc(2025, 1, 14, 2)}
    assert moved_days(first.watermarks, second.watermarks) == [DAY]

    # An upper bound on the partition time, the mistake the lower-bound-only filter avoids,
    # misses the late row.
    query = build_cost_query(
        export.table, _one_day(), client.table_partitioning(), project_ids=[PROJECT_A]
    )
    bounded = query.sql.replace(
        "_PARTITIONTIME >= @partition_start",
        "_PARTITIONTIME >= @partition_start AND _PARTITIONTIME < @usage_end",
    )
    assert bounded != query.sql
    rows = client.run(dataclasses.replace(query, sql=bounded)).rows
    assert [row["unblended_cost"] for row in rows] == [Decimal(5)]


def test_is_estimated_follows_the_invoice_month_including_crossover(
    make_export, open_client
) -> None:
    export = make_export(
        [
            export_row(PROJECT_A, utc(2025, 1, 30, 5), 1.0),
            # Usage of the 31st exported on 3 February, billed in February's invoice.
            export_row(
                PROJECT_A,
                utc(2025, 1, 31, 5),
                1.0,
                exported=utc(2025, 2, 3, 1),
                invoice_month="202502",
            ),
        ]
    )
    window = DateRange(dt.date(2025, 1, 30), dt.date(2025, 1, 31))
    costs = collect_billing_export(
        open_client(export), project_ids=[PROJECT_A], window=window, as_of=dt.date(2025, 2, 10)
    )
    assert costs.for_project(PROJECT_A).estimated_by_day == {
        dt.date(2025, 1, 30): False,
        dt.date(2025, 1, 31): True,
    }
    assert costs.invoice_months[dt.date(2025, 1, 31)] == "202502"


def test_a_moved_export_time_triggers_a_re_pull_of_exactly_those_days(
    bigquery_sandbox: BigQuerySandbox, make_export, open_client
) -> None:
    generator = BillingExportGenerator(seed=7)
    projects = [PROJECT_A, PROJECT_B]
    start, end = dt.date(2025, 2, 1), dt.date(2025, 3, 9)
    first_pull, second_pull = utc(2025, 3, 10, 6), utc(2025, 3, 13, 6)
    every_row = list(generator.rows(projects, start, end, as_of=second_pull))
    export = make_export([row for row in every_row if row["export_time"] <= first_pull])
    client = open_client(export)
    partitioning = client.table_partitioning()
    window = DateRange(start, end)
    first = collect_billing_export(
        client,
        project_ids=projects,
        window=window,
        as_of=first_pull.date(),
        partitioning=partitioning,
    )
    assert first.watermarks == generator.watermarks(projects, start, end, as_of=first_pull)

    arrived = [row for row in every_row if first_pull < row["export_time"] <= second_pull]
    seed_export(
        bigquery_sandbox.engine, TableRef(BILLING_PROJECT, DATASET, export.table.table), arrived
    )
    fresh, check = read_watermarks(
        client,
        project_ids=projects,
        exported_since=first_pull,
        usage_start=start,
        partitioning=partitioning,
    )
    expected = sorted({row["usage_start_time"].date() for row in arrived})
    moved = moved_days(first.watermarks, fresh)
    assert moved == expected
    # Late rows moved days well before the last few.
    assert any(day < end - dt.timedelta(days=3) for day in moved)
    # The check reads only the partitions loaded since the first pull.
    assert check.bytes_processed < first.bytes_processed / 5

    plan = repull_plan(
        second_pull.date(),
        SyncPolicy(restatement_days=3, month_repull_until_day=0),
        stored=first.watermarks,
        fresh=fresh,
        earliest=start,
    )
    trailing = {second_pull.date() - dt.timedelta(days=offset) for offset in (1, 2, 3)}
    assert set(plan.days) == set(moved) | (trailing & {d for d in plan.days})
    assert {day for day, why in plan.reasons.items() if "export_time moved" in why} == {
        day for day in moved if day in first.watermarks
    }

    # Re-pulling a moved day picks up its new value.
    old_day = moved[0]
    again = collect_billing_export(
        client,
        project_ids=projects,
        window=_one_day(old_day),
        as_of=second_pull.date(),
        partitioning=partitioning,
    )
    before = sum(
        (
            parsed.frame.loc[parsed.frame["date"] == old_day, "net_unblended_cost"].sum()
            for parsed in first.by_project.values()
        ),
        Decimal(0),
    )
    after = sum(
        (parsed.frame["net_unblended_cost"].sum() for parsed in again.by_project.values()),
        Decimal(0),
    )
    assert after != before


def test_a_table_without_ingestion_time_partitions_falls_back_to_usage_bounds(
    make_export, open_client
) -> None:
    rows = [
        export_row(PROJECT_A, utc(2025, 1, 9, 5), 100.0),
        export_row(PROJECT_A, utc(2025, 1, 10, 5), 1.0),
        export_row(PROJECT_A, utc(2025, 1, 11, 5), 100.0),
    ]
    for partitioning in ("none", "usage_start_time"):
        export = make_export(rows, partitioning=partitioning)
        client = open_client(export)
        detected = client.table_partitioning()
        assert detected != TablePartitioning.from_table_resource({"timePartitioning": {}})
        costs = collect_billing_export(
            client, project_ids=[PROJECT_A], window=_one_day(), as_of=AS_OF
        )
        assert list(costs.for_project(PROJECT_A).frame["unblended_cost"]) == [Decimal(1)]
