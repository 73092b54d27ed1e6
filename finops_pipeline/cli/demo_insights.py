"""The demo's second half: recommendations, anomalies and a summary chart for every tenant.

After ``finops demo`` has loaded costs, it materialises the insight assets in-process, exactly
as the weekly schedule and the automation would: ``cost_recommendations`` per account
(paid sandbox requests counted), ``cost_anomalies`` once, and ``cost_summary`` per tenant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import dagster as dg

from finops_pipeline.assets.anomalies import cost_anomalies
from finops_pipeline.assets.recommendations import PAID_REQUESTS_KEY, cost_recommendations
from finops_pipeline.assets.summary import cost_summary
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME, TENANTS_PARTITIONS_NAME

_DEMO_TAGS = {"finops/source": "demo"}
#: Providers whose recommenders are free, as the demo's summary names them.
UNBILLED_RECOMMENDERS = {"azure": "Azure Advisor", "gcp": "GCP Recommender"}


@dataclass(frozen=True)
class TenantInsights:
    """What the insight assets show for one tenant."""

    tenant_id: str
    open_recommendations: int
    monthly_savings: dict[str, Decimal]
    anomalies: int
    chart_bytes: int
    period: str


@dataclass
class InsightsReport:
    """The insight assets' materialisations in the demo."""

    recommendation_paid_requests: int = 0
    #: Requests of the recommenders that do not bill them, per provider (Azure Advisor,
    #: GCP Recommender), from the ``<provider>_requests`` metadata.
    recommendation_unbilled_requests: dict[str, int] = field(default_factory=dict)
    recommendation_accounts: int = 0
    #: BigQuery bytes billed for finding where GCP projects run (``gcp_bytes_billed``).
    recommendation_bytes_billed: int = 0
    anomalies_stored: int = 0
    tenants: list[TenantInsights] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.errors


def _metadata(result: dg.ExecuteInProcessResult, node: str) -> Mapping[str, Any]:
    materialisations = result.asset_materializations_for_node(node)
    return materialisations[0].metadata if materialisations else {}


def _error(result: dg.ExecuteInProcessResult, what: str) -> str:
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_failure_data:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return f"{what}: {data.user_failure_data.description.splitlines()[0]}"
            if data.error is not None:
                return f"{what}: {data.error.cls_name}: {data.error.message.strip()}"
    return f"{what} failed"


def materialize_insights(
    *,
    account_ids: Sequence[str],
    tenant_ids: Sequence[str],
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    run_config: Mapping[str, Any] | None = None,
) -> InsightsReport:
    """Refresh recommendations per account, judge anomalies, and chart each tenant."""
    report = InsightsReport()
    known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
    missing = [account for account in account_ids if account not in known]
    if missing:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, missing)
    tenants = set(instance.get_dynamic_partitions(TENANTS_PARTITIONS_NAME))
    new_tenants = [tenant for tenant in tenant_ids if tenant not in tenants]
    if new_tenants:
        instance.add_dynamic_partitions(TENANTS_PARTITIONS_NAME, new_tenants)

    def run(assets: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            assets,
            instance=instance,
            resources=dict(resources),
            run_config=dict(run_config or {}),
            tags=_DEMO_TAGS,
            raise_on_error=False,
            **kwargs,
        )

    for account_id in account_ids:
        result = run([cost_recommendations], partition_key=account_id)
        if not result.success:
            report.errors.append(_error(result, f"recommendations of {account_id}"))
            continue
        metadata = _metadata(result, "cost_recommendations")
        refreshed = metadata.get("accounts_refreshed")
        report.recommendation_accounts += int(refreshed.value) if refreshed is not None else 0
        paid = metadata.get(PAID_REQUESTS_KEY)
        report.recommendation_paid_requests += int(paid.value) if paid is not None else 0
        billed = metadata.get("gcp_bytes_billed")
        report.recommendation_bytes_billed += int(billed.value) if billed is not None else 0
        for provider in UNBILLED_RECOMMENDERS:
            counted = metadata.get(f"{provider}_requests")
            if counted is not None:
                unbilled = report.recommendation_unbilled_requests
                unbilled[provider] = unbilled.get(provider, 0) + int(counted.value)

    anomalies = run([cost_anomalies])
    if not anomalies.success:
        report.errors.append(_error(anomalies, "anomalies"))
        return report
    stored = _metadata(anomalies, "cost_anomalies").get("dagster/row_count")
    report.anomalies_stored = int(stored.value) if stored is not None else 0

    for tenant_id in tenant_ids:
        result = run(
            [cost_anomalies, cost_summary], selection=[cost_summary], partition_key=tenant_id
        )
        if not result.success:
            report.errors.append(_error(result, f"summary of {tenant_id}"))
            continue
        metadata = _metadata(result, "cost_summary")
        savings = {
            key.removeprefix("open_monthly_savings_"): Decimal(str(value.value))
            for key, value in metadata.items()
            if key.startswith("open_monthly_savings_")
        }
        count = sum(
            int(value.value)
            for key, value in metadata.items()
            if key.startswith("open_recommendations_")
        )
        report.tenants.append(
            TenantInsights(
                tenant_id=tenant_id,
                open_recommendations=count,
                monthly_savings=savings,
                anomalies=int(metadata["anomalies"].value),
                chart_bytes=int(metadata["chart_bytes"].value),
                period=str(metadata["period"].value),
            )
        )
    return report


def insights_lines(report: InsightsReport) -> list[str]:
    """The demo summary's insights part, one line per entry."""
    unbilled = "".join(
        f", {count} {UNBILLED_RECOMMENDERS[provider]} requests not billed"
        for provider, count in sorted(report.recommendation_unbilled_requests.items())
        if count
    )
    if report.recommendation_bytes_billed:
        unbilled += (
            f", {report.recommendation_bytes_billed / 2**20:g} MiB BigQuery billed finding "
            "where the GCP projects run"
        )
    lines = [
        "",
        f"Insights: recommendations refreshed for {report.recommendation_accounts} accounts "
        f"({report.recommendation_paid_requests} paid requests{unbilled}), "
        f"{report.anomalies_stored} anomalies in the judged days.",
    ]
    for tenant in report.tenants:
        savings = (
            ", ".join(
                f"{amount:,.2f} {currency}/month"
                for currency, amount in sorted(tenant.monthly_savings.items())
            )
            or "none"
        )
        lines.append(
            f"  {tenant.tenant_id:<14} {tenant.open_recommendations:>4} open recommendation"
            f"{'' if tenant.open_recommendations == 1 else 's'} "
            f"({savings}); {tenant.anomalies} anomal{'y' if tenant.anomalies == 1 else 'ies'} "
            f"in {tenant.period}; "
            f"chart {tenant.chart_bytes / 1000:.0f} KB"
        )
    for error in report.errors:
        lines.append(f"  error: {error}")
    return lines
