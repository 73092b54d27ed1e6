"""Asset checks on ``cost_data``: reconciliation, freshness, completeness and sanity.

Design: unpartitioned ``@dg.asset_check``s that report per account in their metadata.
``cost_data`` is partitioned by account × day and materialised in range runs; Dagster's
partitioned checks are a preview and, in a range run, record their result against no
partition while the per-partition records stay PLANNED. An unpartitioned check runs once per
run, reads the run's accounts and days from its partition-range tags, and names every failing
account with its months or days. ``check_results`` on the asset's ``MaterializeResult`` would
run the checks inside the asset's step, so they could not be run alone from the UI; separate
check ops can, and ``cost_data_job`` includes them, so they run after every materialisation.
Run alone (no partition tags), a check covers every active account and all days.

They read only Postgres. The provider's side of the reconciliation is fetched with the
window it checks (one ungrouped Cost Explorer request per account and window, stored in
``cost_provider_totals`` in the load's transaction), so a check never pays for a request.
"""

import datetime as dt
from collections.abc import Callable, Mapping

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.db.quality import account_labels
from finops_pipeline.quality.checks import COMPLETENESS, FRESHNESS, RECONCILIATION, SANITY
from finops_pipeline.quality.evaluate import CheckScope, evaluate_check, unreconciled_accounts
from finops_pipeline.quality.findings import CheckResult
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sync.run_tags import run_account_ranges

COST_DATA_KEY = dg.AssetKey("cost_data")

_DESCRIPTIONS = {
    RECONCILIATION: "The loaded unblended cost per account, month and currency equals the "
    "provider's own ungrouped total for the same days, within a cent.",
    FRESHNESS: "Each account's latest final (no longer estimated) day is at most its provider's "
    "lag old (FINOPS_FRESHNESS_MAX_LAG_DAYS; AWS 6 days, Azure and GCP 40).",
    COMPLETENESS: "No day inside an account's synced windows is missing, and no day's rows "
    "changed since its load. A zero-cost day is a day marker with no rows.",
    SANITY: "One currency per account, no NULL or blank keys, rows under the account's own "
    "provider, no future dates.",
}
#: A stale account is a warning; wrong or missing data is an error.
_SEVERITY = {FRESHNESS: dg.AssetCheckSeverity.WARN}


def check_result(
    result: CheckResult, scope: CheckScope, labels: Mapping[str, str] | None = None
) -> dg.AssetCheckResult:
    """A Dagster check result naming each failing account and what is wrong with it."""
    labels = labels or {}
    failing = result.failing
    metadata: dict[str, dg.MetadataValue] = {
        "scope": dg.MetadataValue.text(scope.describe),
        "accounts_checked": dg.MetadataValue.int(len(result.findings)),
        "accounts_failing": dg.MetadataValue.int(len(failing)),
        "per_account": dg.MetadataValue.json(result.per_account()),
    }
    if failing:
        metadata["failures"] = dg.MetadataValue.md(
            "| account | id | problems |\n|---|---|---|\n"
            + "\n".join(
                f"| {labels.get(finding.cloud_account_id, '(removed)')} | "
                f"{finding.cloud_account_id} | {finding.summary.replace('|', '/')} |"
                for finding in failing[:50]
            )
        )
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=_SEVERITY.get(result.check, dg.AssetCheckSeverity.ERROR),
        description=result.description[:2000],
        metadata=metadata,
    )


def _run_check(
    name: str, context: dg.AssetCheckExecutionContext, postgres: PostgresResource
) -> dg.AssetCheckResult:
    scope = CheckScope.of_ranges(run_account_ranges(context.instance, context.run))
    config = FinopsConfig.from_env()
    with postgres.connection() as connection:
        result = evaluate_check(
            connection,
            name,
            scope,
            today=dt.datetime.now(dt.UTC).date(),
            max_lag_days=config.freshness_max_lag_days,
        )
        labels = account_labels(connection, [f.cloud_account_id for f in result.failing])
        unreconciled = unreconciled_accounts(connection, scope) if name == RECONCILIATION else []
    context.log.info(result.description)
    evaluation = check_result(result, scope, labels)
    if name == RECONCILIATION:
        metadata = dict(evaluation.metadata or {})
        # Passing with nothing compared is not the same as matching: say which ones.
        metadata["accounts_not_reconciled"] = dg.MetadataValue.int(len(unreconciled))
        if unreconciled:
            metadata["not_reconciled"] = dg.MetadataValue.text(", ".join(unreconciled[:50]))
        evaluation = dg.AssetCheckResult(
            passed=evaluation.passed,
            severity=evaluation.severity,
            description=evaluation.description,
            metadata=metadata,
        )
    return evaluation


def _define(name: str) -> dg.AssetChecksDefinition:
    def evaluate(
        context: dg.AssetCheckExecutionContext, postgres: PostgresResource
    ) -> dg.AssetCheckResult:
        return _run_check(name, context, postgres)

    evaluate.__name__ = name
    decorate: Callable[..., dg.AssetChecksDefinition] = dg.asset_check(
        asset=COST_DATA_KEY,
        name=name,
        description=_DESCRIPTIONS[name],
        # Not blocking: nothing downstream of cost_data yet, and a failed check must not
        # hide the rows a person needs to see to investigate it.
        blocking=False,
    )
    return decorate(evaluate)


cost_data_reconciliation = _define(RECONCILIATION)
cost_data_freshness = _define(FRESHNESS)
cost_data_completeness = _define(COMPLETENESS)
cost_data_sanity = _define(SANITY)

COST_DATA_CHECKS: tuple[dg.AssetChecksDefinition, ...] = (
    cost_data_reconciliation,
    cost_data_freshness,
    cost_data_completeness,
    cost_data_sanity,
)
