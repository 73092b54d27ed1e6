"""The ``cost_summary`` asset: per tenant, a chart of daily spend and the week's movers."""

import datetime as dt

import dagster as dg
import pandas as pd

from finops_pipeline.assets.anomalies import (
    AFTER_COST_DATA_CHANGES,
    cost_anomalies,
    provider_cost_anomalies,
)
from finops_pipeline.db.anomalies import tenant_anomalies, tenant_latest_day, tenant_service_days
from finops_pipeline.db.recommendations import open_savings_by_currency
from finops_pipeline.insights.chart import currency_formatter
from finops_pipeline.insights.summary import SUMMARY_DAYS, build_tenant_summary
from finops_pipeline.partitions import tenant_partitions
from finops_pipeline.resources.postgres import PostgresResource

_ANOMALY_FRAME_COLUMNS = [
    "service",
    "currency",
    "date",
    "direction",
    "confirmed",
    "impact",
    "expected",
    "actual",
    "source",
]


@dg.asset(
    name="cost_summary",
    deps=[
        cost_anomalies,
        # Any account's provider anomalies may belong to any tenant's chart.
        dg.AssetDep(provider_cost_anomalies, partition_mapping=dg.AllPartitionMapping()),
    ],
    # One run per tenant: each materialisation carries its own tenant's chart, which a
    # single-run range could not (its metadata would be shared by every partition).
    partitions_def=tenant_partitions,
    # Follows cost_anomalies, which follows cost_data; also draws new tenants' first chart.
    automation_condition=AFTER_COST_DATA_CHANGES,
    group_name="insights",
    kinds={"postgres", "pandas"},
    owners=["team:finops"],
    tags={"domain": "finops"},
)
def cost_summary(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Each tenant's last eight weeks at a glance: daily spend of its top services with the
    anomalies marked (behind "Show Markdown"), the biggest movers week over week, and its
    open savings recommendations."""
    tenant_id = context.partition_key
    with postgres.connection() as connection:
        end = tenant_latest_day(connection, tenant_id)
        start = end - dt.timedelta(days=SUMMARY_DAYS - 1) if end else None
        daily = (
            tenant_service_days(connection, tenant_id, start, end)
            if start and end
            else pd.DataFrame(columns=["service", "currency", "date", "cost"])
        )
        stored = tenant_anomalies(connection, tenant_id, start, end) if start and end else []
        savings = open_savings_by_currency(connection, tenant_id)
    anomalies = pd.DataFrame(
        [
            (
                a.service,
                a.currency,
                a.date,
                a.direction,
                a.confirmed,
                a.impact,
                a.expected,
                a.actual,
                a.source,
            )
            for a in stored
        ],
        columns=_ANOMALY_FRAME_COLUMNS,
    )
    summary = build_tenant_summary(tenant_id, daily, anomalies)
    label = currency_formatter(summary.currency)
    metadata: dict[str, dg.MetadataValue] = {
        "summary": dg.MetadataValue.md(summary.markdown),
        "chart_bytes": dg.MetadataValue.int(len(summary.png)),
        "period": dg.MetadataValue.text(summary.period),
        "last_7_days": dg.MetadataValue.text(f"{label(summary.last_7_days)}"),
        "anomalies": dg.MetadataValue.int(summary.anomalies_shown),
        "movers": dg.MetadataValue.table(
            records=[
                dg.TableRecord(
                    {
                        "service": str(row.service),
                        "previous_week": round(float(row.previous_week), 2),
                        "this_week": round(float(row.this_week), 2),
                        "change": round(float(row.change), 2),
                    }
                )
                for row in summary.movers.itertuples(index=False)
            ],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("service", "string"),
                    dg.TableColumn("previous_week", "float"),
                    dg.TableColumn("this_week", "float"),
                    dg.TableColumn("change", "float"),
                ]
            ),
        ),
    }
    for currency, (count, total) in sorted(savings.items()):
        metadata[f"open_recommendations_{currency}"] = dg.MetadataValue.int(count)
        metadata[f"open_monthly_savings_{currency}"] = dg.MetadataValue.text(str(total))
    return dg.MaterializeResult(metadata=metadata)
