"""The ``cost_anomalies`` asset: (account, service, day) points far from their baseline."""

import datetime as dt

import dagster as dg
from pydantic import Field

from finops_pipeline.assets.cost_data import COLLECTOR_RESOURCE_KEYS, COST_EXPLORER_POOL, cost_data
from finops_pipeline.assets.recommendations import (
    PAID_REQUESTS_BY_ACCOUNT_KEY,
    PAID_REQUESTS_KEY,
)
from finops_pipeline.insights.anomalies import DetectorConfig
from finops_pipeline.partitions import cloud_account_partitions
from finops_pipeline.resources.credentials import CredentialDecryptor
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.anomaly_refresh import DEFAULT_LOOKBACK_DAYS, refresh_anomalies
from finops_pipeline.sync.provider_anomaly_refresh import refresh_provider_anomalies

PREVIEW_ROWS = 10

ANOMALY_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("tenant_id", "text"),
        dg.TableColumn("cloud_account_id", "uuid", description="cloud_accounts.id"),
        dg.TableColumn("source", "text", description="finops_detector, or a provider's own"),
        dg.TableColumn("service", "text"),
        dg.TableColumn("currency", "text"),
        dg.TableColumn("date", "date", description="UTC usage day"),
        dg.TableColumn("expected", "numeric", description="Baseline for the day"),
        dg.TableColumn("actual", "numeric", description="Gross cost (credits excluded)"),
        dg.TableColumn("score", "double precision", description="Robust z-score"),
        dg.TableColumn("impact", "numeric", description="actual - expected"),
        dg.TableColumn("direction", "text", description="spike or drop"),
        dg.TableColumn("confirmed", "boolean", description="The 14 days after it exist"),
    ],
    constraints=dg.TableConstraints(
        other=["primary key (tenant_id, cloud_account_id, source, service, currency, date)"]
    ),
)

#: Re-run whenever cost_data changed, once nothing upstream is running. Unlike ``eager()``
#: it does not wait for "missing" upstream partitions: cost_data has one per account and
#: day of Cost Explorer's whole history, most of which are never materialised, and an
#: unpartitioned asset downstream of them would otherwise never run.
AFTER_COST_DATA_CHANGES = (
    (
        dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after cost_data changes")


class AnomalyDetectionConfig(dg.Config):
    """Run config of ``cost_anomalies``; the defaults are tuned on the sandbox."""

    lookback_days: int = Field(
        default=DEFAULT_LOOKBACK_DAYS,
        description="Days of each account re-read and re-judged, ending at the newest day.",
    )
    min_daily_cost: float = Field(
        default=DetectorConfig.min_daily_cost,
        description="Tiny-service floor: a service costing less than this a day is ignored.",
    )
    min_impact: float = Field(
        default=DetectorConfig.min_impact,
        description="Smallest |actual - expected| worth an alarm, in the account's currency.",
    )
    score_threshold: float = Field(
        default=DetectorConfig.score_threshold,
        description="Robust z-score a point must reach, either way.",
    )

    def detector(self) -> DetectorConfig:
        return DetectorConfig(
            min_daily_cost=self.min_daily_cost,
            min_impact=self.min_impact,
            score_threshold=self.score_threshold,
        )


@dg.asset(
    name="cost_anomalies",
    deps=[cost_data],
    automation_condition=AFTER_COST_DATA_CHANGES,
    group_name="insights",
    kinds={"postgres", "pandas"},
    owners=["team:finops"],
    tags={"domain": "finops"},
    metadata={"dagster/column_schema": ANOMALY_COLUMNS, "dagster/table_name": "cost_anomalies"},
)
def cost_anomalies(
    context: dg.AssetExecutionContext,
    config: AnomalyDetectionConfig,
    postgres: PostgresResource,
) -> dg.MaterializeResult:
    """Days on which a service's cost jumped or fell far from its usual level, per account.

    The baseline is the 28 days before each day (median and MAD, with weekday seasonality);
    services under the tiny-service floor are ignored. Re-runs after every cost_data change
    and re-judges the recent days, so a restated day updates its anomaly in place.
    """
    with postgres.connection() as connection:
        report = refresh_anomalies(
            connection,
            config.detector(),
            lookback_days=config.lookback_days,
            run_id=context.run.run_id,
        )
    anomalies = report.anomalies
    spikes = int((anomalies["direction"] == "spike").sum()) if not anomalies.empty else 0
    preview = (
        anomalies.assign(magnitude=anomalies["impact"].abs())
        .sort_values(["magnitude", "date"], ascending=[False, False])
        .head(PREVIEW_ROWS)
        if not anomalies.empty
        else anomalies
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(anomalies)),
            "judged_from": dg.MetadataValue.text(str(report.start)),
            "judged_to": dg.MetadataValue.text(str(report.end)),
            "accounts": dg.MetadataValue.int(report.accounts),
            "spikes": dg.MetadataValue.int(spikes),
            "drops": dg.MetadataValue.int(len(anomalies) - spikes),
            "anomalies_new": dg.MetadataValue.int(report.stats.inserted),
            "anomalies_updated": dg.MetadataValue.int(report.stats.updated),
            "anomalies_unchanged": dg.MetadataValue.int(report.stats.unchanged),
            "anomalies_removed": dg.MetadataValue.int(report.stats.removed),
            "largest": dg.MetadataValue.table(
                records=[
                    dg.TableRecord(
                        {
                            "tenant": str(row.tenant_id),
                            "account": str(row.cloud_account_id),
                            "service": str(row.service),
                            "date": str(row.date),
                            "direction": str(row.direction),
                            "expected": round(float(row.expected), 2),
                            "actual": round(float(row.actual), 2),
                            "impact": round(float(row.impact), 2),
                            "currency": str(row.currency),
                        }
                    )
                    for row in preview.itertuples(index=False)
                ],
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn("tenant", "string"),
                        dg.TableColumn("account", "string"),
                        dg.TableColumn("service", "string"),
                        dg.TableColumn("date", "string"),
                        dg.TableColumn("direction", "string"),
                        dg.TableColumn("expected", "float"),
                        dg.TableColumn("actual", "float"),
                        dg.TableColumn("impact", "float"),
                        dg.TableColumn("currency", "string"),
                    ]
                ),
            ),
        }
    )


@dg.asset(
    name="provider_cost_anomalies",
    # By key, as cost_data: each registered provider's resource; those that read their
    # cloud's own anomaly detection implement fetch_provider_anomalies.
    required_resource_keys={"postgres", "credential_decryptor", *COLLECTOR_RESOURCE_KEYS.values()},
    partitions_def=cloud_account_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=COST_EXPLORER_POOL,
    group_name="insights",
    kinds={"postgres", "aws"},
    owners=["team:finops"],
    tags={"domain": "finops"},
    metadata={"dagster/column_schema": ANOMALY_COLUMNS, "dagster/table_name": "cost_anomalies"},
)
def provider_cost_anomalies(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The clouds' own anomaly detection (AWS Cost Anomaly Detection, GetAnomalies), stored in
    cost_anomalies beside ours, marked by source. Paid: one request per account and run for
    most accounts; its schedule is off until turned on."""
    postgres: PostgresResource = context.resources.postgres
    decryptor: CredentialDecryptor = context.resources.credential_decryptor
    resources = {
        provider: getattr(context.resources, key)
        for provider, key in COLLECTOR_RESOURCE_KEYS.items()
    }
    collectors = {
        provider: resource
        for provider, resource in resources.items()
        if callable(getattr(resource, "fetch_provider_anomalies", None))
    }
    account_ids = list(context.partition_keys)
    with postgres.connection() as connection:
        report = refresh_provider_anomalies(
            account_ids,
            connection=connection,
            decrypt=decryptor.decrypt_credentials,
            collectors=collectors,
            today=dt.datetime.now(dt.UTC).date(),
            run_id=context.run.run_id,
        )
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(sum(report.stored.values())),
        PAID_REQUESTS_KEY: dg.MetadataValue.int(report.paid_requests),
        PAID_REQUESTS_BY_ACCOUNT_KEY: dg.MetadataValue.json(report.paid_requests_by_account),
        "anomalies_new": dg.MetadataValue.int(report.stats.inserted),
        "anomalies_updated": dg.MetadataValue.int(report.stats.updated),
        "anomalies_removed": dg.MetadataValue.int(report.stats.removed),
        "accounts_without_provider_detection": dg.MetadataValue.int(len(report.skipped)),
    }
    if report.failures:
        lines = [f"- {f.account_id}: {f.error_type}: {f.message}" for f in report.failures]
        raise dg.Failure(
            description="\n".join(
                [
                    f"Provider anomalies of {len(report.failures)} of {len(account_ids)} "
                    "accounts failed; the others were stored.",
                    *lines,
                ]
            ),
            metadata=metadata,
            allow_retries=not all(f.permanent for f in report.failures),
        )
    return dg.MaterializeResult(metadata=metadata)
