"""The ``cost_recommendations`` asset: each account's current savings recommendations."""

import dagster as dg

from finops_pipeline.assets.cost_data import COLLECTOR_RESOURCE_KEYS, COST_EXPLORER_POOL
from finops_pipeline.partitions import cloud_account_partitions
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.recommenders import RecommendationCollector
from finops_pipeline.resources.credentials import CredentialDecryptor
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.budgets import BudgetMeter
from finops_pipeline.sync.recommendation_refresh import RefreshReport, refresh_accounts

#: Metadata key of the paid provider requests, the same as ``cost_data``'s, so a tenant's
#: request budget can sum both.
PAID_REQUESTS_KEY = "paid_ce_requests"
PAID_REQUESTS_BY_ACCOUNT_KEY = "paid_requests_by_account"

RECOMMENDATION_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("tenant_id", "text"),
        dg.TableColumn("cloud_account_id", "uuid", description="cloud_accounts.id"),
        dg.TableColumn("provider", "text", description="aws, azure or gcp"),
        dg.TableColumn("source", "text", description="The provider's recommender"),
        dg.TableColumn("resource", "text", description="What it is about; stable across weeks"),
        dg.TableColumn("kind", "text", description="rightsize, terminate, commitment_purchase"),
        dg.TableColumn("current", "text"),
        dg.TableColumn("recommended", "text"),
        dg.TableColumn("monthly_savings", "numeric", description="Provider's estimate, exact"),
        dg.TableColumn("currency", "text"),
        dg.TableColumn("raw", "jsonb", description="The provider's own payload"),
        dg.TableColumn("first_seen", "timestamptz"),
        dg.TableColumn("last_seen", "timestamptz", description="Last refresh that returned it"),
        dg.TableColumn("resolved_at", "timestamptz", description="NULL while it stands"),
    ],
    constraints=dg.TableConstraints(
        other=["primary key (tenant_id, cloud_account_id, provider, source, resource)"]
    ),
)


@dg.asset(
    name="cost_recommendations",
    # By key, as cost_data: each registered provider's resource, which recommends savings
    # when it implements RecommendationCollector.
    required_resource_keys={"postgres", "credential_decryptor", *COLLECTOR_RESOURCE_KEYS.values()},
    partitions_def=cloud_account_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # Paid Cost Explorer requests, like cost_data's: the same concurrency pool.
    pool=COST_EXPLORER_POOL,
    group_name="insights",
    kinds={"postgres", "aws", "azure", "gcp"},
    owners=["team:finops"],
    tags={"domain": "finops"},
    metadata={
        "dagster/column_schema": RECOMMENDATION_COLUMNS,
        "dagster/table_name": "cost_recommendations",
    },
)
def cost_recommendations(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """What each account could save, as its cloud provider recommends it (estimated monthly).

    AWS: EC2 rightsizing and Savings Plans purchases from Cost Explorer, two paid requests per
    account and refresh for most accounts. Azure: Advisor's cost recommendations (VM
    right-sizing and shutdowns, reservations, other savings) per subscription; not billed and
    no QPU, one request per page (``azure_requests``), the app needing Reader on the
    subscription. GCP: Recommender's cost recommenders (VM sizing, idle VMs, disks, addresses
    and images, committed use discounts, Cloud SQL) per project, at the zones and regions
    where its billing export shows usage in the last 30 days (one small BigQuery query,
    ``gcp_bytes_billed``) or those of FINOPS_GCP_RECOMMENDER_LOCATIONS; free, 18 requests
    for a project in four zones of one region (``gcp_requests``). Each refresh replaces the provider's current set for the
    account: recommendations still there are updated, ones that disappeared are
    marked resolved (kept, with when they were last seen). Refreshed weekly.
    """
    postgres: PostgresResource = context.resources.postgres
    credential_decryptor: CredentialDecryptor = context.resources.credential_decryptor
    # A range run lists every account; partition_key would raise.
    account_ids = list(context.partition_keys)
    collectors = recommenders_from(context)
    with postgres.connection() as connection:
        report = refresh_accounts(
            account_ids,
            connection=connection,
            decrypt=credential_decryptor.decrypt_credentials,
            collectors=collectors,
            run_id=context.run.run_id,
            # Paid recommendation requests count against the tenant's budget, in the
            # collector's unit (Azure Advisor plans 0 QPU).
            meter=BudgetMeter(
                connection, purpose="refreshing the recommendations", collectors=collectors
            ),
        )
    for refreshed in report.refreshed:
        for note in refreshed.notes:
            context.log.warning("Account %s: %s", refreshed.account_id, note)
    metadata = refresh_metadata(report)
    if report.failures:
        lines = [f"- {f.account_id}: {f.error_type}: {f.message}" for f in report.failures]
        raise dg.Failure(
            description="\n".join(
                [
                    f"Recommendations of {len(report.failures)} of {len(account_ids)} accounts "
                    "failed; the others were refreshed, and the failed ones keep their "
                    "stored set.",
                    *lines,
                ]
            ),
            metadata=metadata,
            allow_retries=not all(f.permanent for f in report.failures),
        )
    return dg.MaterializeResult(metadata=metadata)


def recommenders_from(context: dg.AssetExecutionContext) -> dict[str, RecommendationCollector]:
    """The bound provider resources that recommend savings; accounts of the others are
    skipped until theirs implements it."""
    resources = {
        provider: getattr(context.resources, key)
        for provider, key in COLLECTOR_RESOURCE_KEYS.items()
    }
    return {
        provider: resource
        for provider, resource in resources.items()
        if callable(getattr(resource, "fetch_recommendations", None))
    }


def refresh_metadata(report: RefreshReport) -> dict[str, dg.MetadataValue]:
    """What a person checks first: open recommendations, savings, and the requests paid."""
    totals = report.totals()
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/row_count": dg.MetadataValue.int(report.open_count),
        PAID_REQUESTS_KEY: dg.MetadataValue.int(report.paid_requests),
        "ce_request_cost_usd": dg.MetadataValue.float(
            float(report.paid_requests) * float(CE_PRICE_PER_REQUEST_USD)
        ),
        # Per account, so a per-tenant request budget can charge each tenant its own.
        PAID_REQUESTS_BY_ACCOUNT_KEY: dg.MetadataValue.json(report.paid_requests_by_account()),
        # Unbilled requests too (Azure Advisor), as cost_data's azure_requests.
        **{
            f"{provider}_requests": dg.MetadataValue.int(count)
            for provider, count in sorted(report.requests_by_provider().items())
        },
        # BigQuery bytes of GCP's location discovery, as cost_data's gcp_bytes_billed.
        **{
            name: dg.MetadataValue.int(value)
            for name, value in sorted(report.usage_metrics().items())
        },
        # Where each GCP project was asked (its discovered zones and regions).
        **{
            f"{provider}_asked_where": dg.MetadataValue.json(by_account)
            for provider, by_account in sorted(report.asked_where_by_provider().items())
        },
        "accounts_refreshed": dg.MetadataValue.int(len(report.refreshed)),
        "accounts_without_recommender": dg.MetadataValue.int(len(report.skipped)),
        **{f"recommendations_{name}": dg.MetadataValue.int(n) for name, n in totals.items()},
    }
    for currency, amount in sorted(report.open_savings().items()):
        metadata[f"open_monthly_savings_{currency}"] = dg.MetadataValue.text(str(amount))
    metadata["largest"] = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "account": account_id,
                    "kind": recommendation.kind,
                    "resource": recommendation.resource_id,
                    "recommended": recommendation.recommended,
                    "monthly_savings": str(recommendation.estimated_monthly_savings),
                    "currency": recommendation.currency,
                }
            )
            for account_id, recommendation in report.largest()
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("account", "string"),
                dg.TableColumn("kind", "string"),
                dg.TableColumn("resource", "string"),
                dg.TableColumn("recommended", "string"),
                dg.TableColumn("monthly_savings", "string"),
                dg.TableColumn("currency", "string"),
            ]
        ),
    )
    if report.failures:
        metadata["failed_accounts"] = dg.MetadataValue.text(
            ", ".join(f.account_id for f in report.failures)
        )
    return metadata
