"""The ``cost_data`` asset: daily cloud costs per account, loaded idempotently."""

import datetime as dt
from typing import Any

import dagster as dg

from finops_pipeline.dagster_internals import use_batched_run_bookkeeping
from finops_pipeline.db.sync_state import outcomes_for_run, record_outcomes
from finops_pipeline.errors import FinopsError
from finops_pipeline.partitions import account_daily_partitions
from finops_pipeline.providers import provider_specs
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.base import CostCollector
from finops_pipeline.resources.credentials import CredentialDecryptor
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.collection import CollectionReport, collect_costs
from finops_pipeline.sync.outcomes import SyncStatus
from finops_pipeline.sync.ranges import ranges_by_account
from finops_pipeline.sync.retries import retry_policy_from_env

COST_EXPLORER_POOL = "cost_explorer"
#: Failure metadata: the failed accounts whose errors are transient, so worth a retry.
RETRYABLE_ACCOUNTS_KEY = "retryable_accounts"

COST_DATA_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("tenant_id", "text", description="Tenant owning the account"),
        dg.TableColumn("cloud_account_id", "uuid", description="cloud_accounts.id"),
        dg.TableColumn("date", "date", description="UTC usage day"),
        dg.TableColumn("provider", "text", description="aws, azure or gcp"),
        dg.TableColumn("service", "text", description="Provider service name"),
        dg.TableColumn("usage_type", "text", description="Provider usage type"),
        dg.TableColumn("unblended_cost", "numeric", description="Exact decimal"),
        dg.TableColumn("amortized_cost", "numeric", description="Exact decimal"),
        dg.TableColumn("net_unblended_cost", "numeric", description="After discounts"),
        dg.TableColumn("usage_quantity", "numeric"),
        dg.TableColumn("currency", "text", description="ISO 4217 code"),
        dg.TableColumn("usage_unit", "text", description="NULL where the provider has none"),
        dg.TableColumn("is_estimated", "boolean", description="Provider still estimates it"),
        dg.TableColumn("ingested_at", "timestamptz", description="When the values last changed"),
        dg.TableColumn("run_id", "text", description="Dagster run that last changed them"),
    ],
    constraints=dg.TableConstraints(
        other=["unique (tenant_id, cloud_account_id, date, provider, service, usage_type)"]
    ),
)


#: The daily schedule materialises cost_data once a day; a day and a few hours without a
#: materialisation shows the asset as stale in the UI. The data's own lag (days estimated,
#: per provider) is the freshness check's business.
COST_DATA_FRESHNESS_POLICY = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=30), warn_window=dt.timedelta(hours=26)
)

#: One collector resource per registered provider: adding a cloud adds its resource here.
COLLECTOR_RESOURCE_KEYS: dict[str, str] = {
    spec.name: spec.resource_key for spec in provider_specs()
}

_COST_DATA_ATTRIBUTES: dict[str, Any] = dict(
    name="cost_data",
    # Declared by key rather than as typed parameters, because the collectors are one per
    # registered provider (Dagster refuses a mix of both styles).
    required_resource_keys={"postgres", "credential_decryptor", *COLLECTOR_RESOURCE_KEYS.values()},
    partitions_def=account_daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=COST_EXPLORER_POOL,
    group_name="costs",
    kinds={"postgres", "aws", "azure", "gcp", "pandas"},
    owners=["team:finops"],
    tags={"domain": "finops"},
    metadata={"dagster/column_schema": COST_DATA_COLUMNS, "dagster/table_name": "cost_data"},
    freshness_policy=COST_DATA_FRESHNESS_POLICY,
)


def _cost_data(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Daily cloud cost per account, service and usage type, one row per UTC day.

    Each materialisation replaces its accounts' date windows with what the provider reports
    now, so restated values (credits, refunds, amortisation, estimates becoming final) are
    picked up and nothing is duplicated. Unique on (tenant_id, cloud_account_id, date,
    provider, service, usage_type).
    """
    postgres: PostgresResource = context.resources.postgres
    credential_decryptor: CredentialDecryptor = context.resources.credential_decryptor
    # Before the run's materialisation events are written: one batch, not one per partition.
    use_batched_run_bookkeeping()
    # A range run must not read context.partition_key: it raises for multi-partition ranges.
    account_ranges = ranges_by_account(context.partition_keys)
    loaded: set[str] = set()
    if context.retry_number > 0:
        # A retry re-reads only the accounts that failed: the others are loaded already, and
        # every Cost Explorer request is paid.
        with postgres.connection() as connection:
            loaded = {
                outcome.cloud_account_id
                for outcome in outcomes_for_run(connection, context.run.run_id)
                if outcome.status == SyncStatus.SUCCESS
            }
        account_ranges = {a: r for a, r in account_ranges.items() if a not in loaded}
    context.log.info(
        "Collecting %d accounts, %d date ranges",
        len(account_ranges),
        sum(len(ranges) for ranges in account_ranges.values()),
    )
    with postgres.connection() as connection:
        try:
            report = collect_costs(
                account_ranges,
                connection=connection,
                decrypt=credential_decryptor.decrypt_credentials,
                collectors=collectors_from(context),
                run_id=context.run.run_id,
            )
        except FinopsError as error:
            # Errors before any account ran (an account removed since the run was queued):
            # the retry policy must not repeat a permanent one.
            raise dg.Failure(
                description=f"{type(error).__name__}: {error}",
                allow_retries=not error.permanent,
            ) from error
    # Recorded by the run itself, so the last-sync sensors know each account's outcome even
    # when one account of a range run failed and the others loaded. On a connection of its
    # own: the load may have lost the first one.
    with postgres.connection() as connection:
        record_outcomes(connection, report.account_outcomes(context.run.run_id))
    metadata = report_metadata(report)
    if report.failures:
        lines = [f"- {f.account_id}: {f.error_type}: {f.message}" for f in report.failures]
        raise dg.Failure(
            description="\n".join([report.failure_summary(loaded_earlier=len(loaded)), *lines]),
            metadata=metadata,
            allow_retries=not all(f.permanent for f in report.failures),
        )
    return dg.MaterializeResult(metadata=metadata)


def collectors_from(context: dg.AssetExecutionContext) -> dict[str, CostCollector]:
    """Each registered provider's collector, as bound in this run's resources."""
    return {
        provider: getattr(context.resources, resource_key)
        for provider, resource_key in COLLECTOR_RESOURCE_KEYS.items()
    }


# Transient failures (throttling, a dropped connection) retry with exponential backoff and
# jitter; permanent ones raise Failure(allow_retries=False) above and are not retried.
cost_data = dg.asset(retry_policy=retry_policy_from_env(), **_COST_DATA_ATTRIBUTES)(_cost_data)

#: The same asset without step retries, for `finops sync`: it retries the failed accounts
#: itself, in new runs, with short waits and a line per retry. In-process execution has no
#: run-level switch for step retries.
cost_data_without_step_retries = dg.asset(**_COST_DATA_ATTRIBUTES)(_cost_data)


def provider_request_metadata(report: CollectionReport) -> dict[str, dg.MetadataValue]:
    """Requests and quota per provider whose API is not billed per request (``azure_requests``,
    ``azure_qpu_consumed``), beside the paid Cost Explorer requests."""
    metadata: dict[str, dg.MetadataValue] = {}
    for provider, requests in sorted(report.requests_by_provider().items()):
        metadata[f"{provider}_requests"] = dg.MetadataValue.int(requests)
    for unit, consumed in sorted(report.quota_consumed().items()):
        metadata[f"{unit}_consumed"] = dg.MetadataValue.float(float(consumed))
    return metadata


def report_metadata(report: CollectionReport) -> dict[str, dg.MetadataValue | int | float | str]:
    """Materialisation metadata: what a person checks first in the UI."""
    totals = report.load_totals()
    metadata: dict[str, dg.MetadataValue | int | float | str] = {
        "dagster/row_count": dg.MetadataValue.int(report.rows_in_windows),
        "rows_written": dg.MetadataValue.int(report.rows_written),
        "rows_inserted": dg.MetadataValue.int(totals["inserted"]),
        "rows_restated": dg.MetadataValue.int(totals["restated"]),
        "rows_removed": dg.MetadataValue.int(totals["removed"]),
        "rows_unchanged": dg.MetadataValue.int(totals["unchanged"]),
        "paid_ce_requests": dg.MetadataValue.int(report.paid_requests),
        "paid_reconciliation_requests": dg.MetadataValue.int(report.reconciliation_requests),
        "ce_request_cost_usd": dg.MetadataValue.float(
            float(report.paid_requests) * float(CE_PRICE_PER_REQUEST_USD)
        ),
        **provider_request_metadata(report),
        "days_estimated": dg.MetadataValue.int(report.estimated_days),
        "days_final": dg.MetadataValue.int(report.final_days),
        "accounts": dg.MetadataValue.int(len({w.account_id for w in report.windows})),
        "windows": dg.MetadataValue.text(
            ", ".join(f"{w.account_id[:8]} {w.window}" for w in report.windows[:20])
        ),
        "elapsed_seconds": dg.MetadataValue.float(round(report.elapsed_seconds, 3)),
    }
    # Provider counters, e.g. gcp_bytes_processed / gcp_bytes_billed (BigQuery bills bytes).
    for name, value in sorted(report.usage_metrics().items()):
        metadata[name] = dg.MetadataValue.int(value)
    for currency, amount in sorted(report.cost_by_currency().items()):
        metadata[f"total_unblended_cost_{currency}"] = dg.MetadataValue.text(str(amount))
    if report.payer_of:
        metadata["paid_requests_by_payer"] = dg.MetadataValue.json(report.paid_requests_by_payer())
    if report.budgets:
        metadata["paid_requests_this_month"] = dg.MetadataValue.json(report.budgets)
    if report.no_data_notes:
        # A JSON list, so the CLI can join the notes of several runs.
        metadata["no_data"] = dg.MetadataValue.json(report.no_data_notes)
    if report.failures:
        metadata["failed_accounts"] = dg.MetadataValue.text(
            ", ".join(f.account_id for f in report.failures)
        )
        metadata[RETRYABLE_ACCOUNTS_KEY] = dg.MetadataValue.text(
            ", ".join(f.account_id for f in report.failures if not f.permanent)
        )
    top = report.top_services()
    metadata["top_services"] = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "account": str(row.cloud_account_id),
                    "service": str(row.service),
                    "currency": str(row.currency),
                    "unblended_cost": str(row.unblended_cost),
                    "days": int(row.days),
                }
            )
            for row in top.itertuples(index=False)
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("account", "string"),
                dg.TableColumn("service", "string"),
                dg.TableColumn("currency", "string"),
                dg.TableColumn("unblended_cost", "string"),
                dg.TableColumn("days", "int"),
            ]
        ),
    )
    return metadata
