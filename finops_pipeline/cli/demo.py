"""``finops demo``: the whole product on the embedded default, against the sandboxes.

Registers the sandbox accounts of every registered provider that has a sandbox
(``ProviderSpec.sandbox``: AWS accounts for a few tenants, an Azure tenant's subscriptions), with
credentials encrypted for real, backfills their history through the real ``cost_data`` asset as in-process range runs, and summarises what is
in ``cost_data``. Safe to re-run: accounts are found again by their natural key, rows are
replaced per window, and each run is a new sandbox pull, so restated values show as changed.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg

from finops_pipeline.cli.demo_insights import InsightsReport, insights_lines, materialize_insights
from finops_pipeline.cli.instance_config import write_instance_config
from finops_pipeline.cli.runner import SyncResult, local_dagster_home, sync_accounts
from finops_pipeline.config import finops_home
from finops_pipeline.constants import PROVIDER_AWS, PROVIDER_GCP
from finops_pipeline.db.accounts import (
    find_account_id,
    get_account,
    register_account,
    replace_credentials,
)
from finops_pipeline.db.organizations import member_accounts, set_management_account
from finops_pipeline.db.reports import TenantSummary, count_cost_rows, tenant_summaries
from finops_pipeline.db.request_budget import BudgetStatus, budget_statuses, set_budget
from finops_pipeline.errors import ConfigurationError, CredentialError
from finops_pipeline.providers import provider_spec, provider_specs
from finops_pipeline.providers.base import ProviderSpec
from finops_pipeline.quality.evaluate import CHECK_NAMES
from finops_pipeline.security.ciphertext import CURRENT_KEY_ENV, KeyRing
from finops_pipeline.security.credentials import open_credentials, seal_credentials
from finops_pipeline.security.keys import ensure_local_key, load_key_ring
from finops_pipeline.sync.organizations import DiscoveryOutcome, discover_members

TOP_SERVICES = 3
#: The demo's tenants each get this monthly cap on paid requests, unless one is set already.
DEMO_MONTHLY_REQUEST_BUDGET = 2000
# The demo prints its own progress; Dagster's console logger would print every step event.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class DemoAccount:
    """A sandbox account the demo registered, or found from an earlier run."""

    account_id: str
    tenant_id: str
    name: str
    number: str
    created: bool
    provider: str = PROVIDER_AWS


@dataclass
class DemoReport:
    """Everything the demo did, for the CLI to print."""

    start: dt.date
    end: dt.date
    key_source: str
    pull_generation: int
    accounts: list[DemoAccount] = field(default_factory=list)
    syncs: list[SyncResult] = field(default_factory=list)
    rows_before: int = 0
    rows_after: int = 0
    tenants: list[TenantSummary] = field(default_factory=list)
    insights: InsightsReport = field(default_factory=InsightsReport)
    elapsed_seconds: float = 0.0
    discoveries: list[DiscoveryOutcome] = field(default_factory=list)
    #: (check, passed, description) of the checks run over every account at the end.
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    budgets: dict[str, BudgetStatus] = field(default_factory=dict)

    def total(self, statistic: str) -> int:
        return sum(int(sync.statistics.get(statistic, 0) or 0) for sync in self.syncs)

    @property
    def success(self) -> bool:
        return (
            all(sync.success for sync in self.syncs)
            and self.insights.success
            and all(outcome.error is None for outcome in self.discoveries)
            and all(passed for _, passed, _ in self.checks)
        )


ProgressCallback = Callable[[int, int, DemoAccount, SyncResult, float], None]


def sandbox_providers() -> list[ProviderSpec]:
    """The registered providers that have a sandbox, in name order: the demo's clouds."""
    return [spec for spec in provider_specs() if spec.sandbox is not None]


def demo_window(
    days: int, today: dt.date | None = None, providers: Sequence[ProviderSpec] | None = None
) -> tuple[dt.date, dt.date]:
    """The last ``days`` complete UTC days, within every demo provider's daily history.

    Raises:
        ConfigurationError: ``days`` is not positive or reaches past a daily history.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    end = today - dt.timedelta(days=1)
    longest, note = None, ""
    for spec in sandbox_providers() if providers is None else providers:
        assert spec.sandbox is not None
        days_kept = (end - spec.sandbox.daily_history_start(today)).days + 1
        if longest is None or days_kept < longest:
            longest, note = days_kept, spec.sandbox.history_note
    if longest is None:
        raise ConfigurationError("No registered provider has a sandbox; the demo needs one.")
    if not 1 <= days <= longest:
        raise ConfigurationError(f"--days must be between 1 and {longest}: {note}")
    return end - dt.timedelta(days=days - 1), end


def key_ring_for_demo(environ: Mapping[str, str] | None = None) -> tuple[KeyRing, str]:
    """``ENCRYPTION_KEY`` if set, else the local key file (created if missing).

    Returns:
        The key ring and a sentence saying where the key lives.
    """
    env = os.environ if environ is None else environ
    if env.get(CURRENT_KEY_ENV, "").strip():
        return load_key_ring(environ=env), f"{CURRENT_KEY_ENV} from the environment"
    path = ensure_local_key(env)
    return load_key_ring(environ=env), f"local key file {path} (mode 0600)"


def ensure_demo_accounts(
    connection: psycopg.Connection,
    ring: KeyRing,
    providers: Sequence[ProviderSpec] | None = None,
) -> list[DemoAccount]:
    """Register each demo provider's sandbox accounts once; later runs find the same rows.

    An existing row whose credentials no longer decrypt (the local key was replaced) gets its
    sandbox credentials encrypted again under the current key; that is only done for sandbox
    rows, whose credentials the sandbox derives anyway.

    Raises:
        ConfigurationError: a non-sandbox account already uses a demo account's id.
    """
    accounts: list[DemoAccount] = []
    for spec in sandbox_providers() if providers is None else providers:
        sandbox = spec.sandbox
        assert sandbox is not None
        for demo_account in sandbox.demo_accounts():
            tenant_id, number = demo_account.tenant_id, demo_account.provider_account_id
            credentials = demo_account.credentials
            existing_id = find_account_id(connection, tenant_id, spec.name, number)
            if existing_id is None:
                account_id = register_account(
                    connection,
                    ring,
                    tenant_id=tenant_id,
                    name=demo_account.name,
                    provider=spec.name,
                    provider_account_id=number,
                    credentials=credentials,
                    endpoint_url=sandbox.endpoint_url,
                    management_account=demo_account.management_account,
                )
                accounts.append(
                    DemoAccount(account_id, tenant_id, demo_account.name, number, True, spec.name)
                )
                continue
            account = get_account(connection, existing_id)
            if not sandbox.is_sandbox_endpoint(account.endpoint_url):
                raise ConfigurationError(
                    f"Tenant {tenant_id} already has {spec.name} account {number} with a real "
                    "endpoint; the demo only touches sandbox accounts. Use another database "
                    "(FINOPS_HOME or DATABASE_URL) for the demo."
                )
            try:
                open_credentials(account, ring)
            except CredentialError:
                blob = seal_credentials(credentials, ring, account.encryption_context)
                replace_credentials(connection, account.id, blob)
            if demo_account.management_account and not account.management_account:
                # A database from a demo before payers discovered their members.
                set_management_account(connection, account.id, True)
            accounts.append(
                DemoAccount(account.id, tenant_id, account.name, number, False, spec.name)
            )
    return accounts


def discover_demo_members(
    connection: psycopg.Connection,
    ring: KeyRing,
    accounts: Sequence[DemoAccount],
    resources: Mapping[str, object],
) -> tuple[list[DiscoveryOutcome], list[DemoAccount]]:
    """List the demo payers' members (one paid request each); returns the member accounts."""
    payers = [
        a.account_id for a in accounts if get_account(connection, a.account_id).management_account
    ]
    outcomes = discover_members(
        connection,
        payers,
        decrypt=lambda account: open_credentials(account, ring),
        ring=ring,
        lister=resources["aws_cost_explorer"],  # type: ignore[arg-type]
        today=dt.datetime.now(dt.UTC).date(),
    )
    added = {member for outcome in outcomes if outcome.changes for member in outcome.changes.added}
    members = [
        DemoAccount(account_id, tenant_id, name, number, account_id in added, PROVIDER_AWS)
        for account_id, tenant_id, name, number in member_accounts(connection, payers)
    ]
    return outcomes, members


def ensure_demo_budgets(connection: psycopg.Connection, tenant_ids: Sequence[str]) -> None:
    """Give each demo tenant a monthly paid-request budget, unless it has one already."""
    existing = budget_statuses(connection, tenant_ids)
    for tenant in tenant_ids:
        status = existing.get(tenant)
        if status is None or status.limit is None:
            set_budget(connection, tenant, DEMO_MONTHLY_REQUEST_BUDGET)


def run_checks(
    instance: dg.DagsterInstance, resources: Mapping[str, object]
) -> list[tuple[str, bool, str]]:
    """cost_data's checks over every account and day, as ``cost_data_checks_job`` runs them
    from the UI; the results show on the asset's Checks tab."""
    from finops_pipeline.definitions import defs

    result = defs.resolve_job_def("cost_data_checks_job").execute_in_process(
        instance=instance,
        resources=dict(resources),
        run_config=QUIET_RUN_CONFIG,
        tags={"finops/source": "demo"},
        raise_on_error=False,
    )
    found = [
        (evaluation.check_name, evaluation.passed, evaluation.description or "")
        for evaluation in result.get_asset_check_evaluations()
    ]
    return sorted(
        found, key=lambda check: CHECK_NAMES.index(check[0]) if check[0] in CHECK_NAMES else 99
    )


def run_groups(accounts: Sequence[DemoAccount]) -> list[tuple[DemoAccount, list[str]]]:
    """One range run per account, except a GCP tenant's projects: they read one billing export,
    and in one run they share its query (BigQuery bills the bytes scanned, not the projects)."""
    groups: list[tuple[DemoAccount, list[str]]] = []
    gcp: dict[str, list[DemoAccount]] = {}
    for account in accounts:
        if account.provider == PROVIDER_GCP:
            gcp.setdefault(account.tenant_id, []).append(account)
        else:
            groups.append((account, [account.account_id]))
    for projects in gcp.values():
        first = projects[0]
        label = DemoAccount(
            first.account_id,
            first.tenant_id,
            f"{len(projects)} GCP projects",
            "billing export",
            any(project.created for project in projects),
            PROVIDER_GCP,
        )
        groups.append((label, [project.account_id for project in projects]))
    return groups


def run_demo(
    *,
    days: int,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    progress: ProgressCallback | None = None,
    providers: Sequence[ProviderSpec] | None = None,
    today: dt.date | None = None,
) -> DemoReport:
    """Register the sandbox tenants and backfill ``days`` days, one range run per account (the
    GCP projects of one export: one run, so one BigQuery query serves them all)."""
    started = time.monotonic()
    providers = sandbox_providers() if providers is None else providers
    start, end = demo_window(days, today, providers)
    ring, key_source = key_ring_for_demo()
    # Each demo run is a new pull from each sandbox, as a later read of the provider would be.
    pulls = [
        spec.sandbox.start_pull()
        for spec in providers
        if spec.sandbox is not None and spec.sandbox.start_pull is not None
    ]
    report = DemoReport(
        start=start, end=end, key_source=key_source, pull_generation=max(pulls, default=0)
    )
    report.accounts = ensure_demo_accounts(connection, ring, providers)
    report.discoveries, members = discover_demo_members(
        connection, ring, report.accounts, resources
    )
    report.accounts += members
    tenant_ids = sorted({account.tenant_id for account in report.accounts})
    ensure_demo_budgets(connection, tenant_ids)
    ids = [account.account_id for account in report.accounts]
    report.rows_before = count_cost_rows(connection, ids)
    groups = run_groups(report.accounts)
    for index, (account, group_ids) in enumerate(groups, start=1):
        run_started = time.monotonic()
        result = sync_accounts(
            group_ids,
            start,
            end,
            instance=instance,
            resources=resources,
            tags={"finops/source": "demo"},
            run_config=QUIET_RUN_CONFIG,
        )
        report.syncs.append(result)
        if progress is not None:
            progress(index, len(groups), account, result, time.monotonic() - run_started)
    report.rows_after = count_cost_rows(connection, ids)
    report.tenants = tenant_summaries(connection, ids, start, end, top=TOP_SERVICES)
    report.checks = run_checks(instance, resources)
    report.budgets = budget_statuses(connection, tenant_ids)
    report.insights = materialize_insights(
        account_ids=ids,
        tenant_ids=sorted({account.tenant_id for account in report.accounts}),
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN_CONFIG,
    )
    report.elapsed_seconds = time.monotonic() - started
    return report


def summary_lines(report: DemoReport) -> list[str]:
    """The demo's closing summary, one line per entry."""
    paid = report.total("paid_ce_requests")
    cost = Decimal(paid) * Decimal(provider_spec("aws").price_per_request_usd)
    lines = [
        f"Backfilled {report.start}..{report.end} "
        f"({(report.end - report.start).days + 1} days) for {len(report.accounts)} accounts "
        f"in {report.elapsed_seconds:.1f} s (sandbox pull {report.pull_generation}).",
        f"  rows in cost_data   {report.rows_after:,} (before this run: {report.rows_before:,})",
        f"  rows this run       {report.total('rows_inserted'):,} new, "
        f"{report.total('rows_restated'):,} restated, {report.total('rows_unchanged'):,} "
        f"unchanged, {report.total('rows_removed'):,} removed",
        f"  paid CE requests    {paid} (${cost:.2f} on real AWS), {len(report.syncs)} range runs",
        f"  reconciliation      {report.total('paid_reconciliation_requests')} of those paid "
        "requests (one ungrouped total per AWS account and window; FINOPS_RECONCILE_AWS=0 "
        "turns it off)",
        *(
            [
                f"  Azure queries       {report.total('azure_requests')} requests (not billed), "
                f"{report.total('azure_qpu_consumed')} QPU of the tenant's quota"
            ]
            if report.total("azure_requests")
            else []
        ),
        *(
            [
                f"  BigQuery bytes      {report.total('gcp_bytes_billed'):,} billed "
                f"({report.total('gcp_bytes_processed'):,} processed) in "
                f"{report.total('gcp_queries')} queries"
            ]
            if report.total("gcp_queries")
            else []
        ),
        f"  credentials key     {report.key_source}",
    ]
    names = {account.account_id: f"{account.name} {account.number}" for account in report.accounts}
    for outcome in report.discoveries:
        line = outcome.line.replace(outcome.payer_id, names.get(outcome.payer_id, outcome.payer_id))
        lines.append(f"  organisation        {line}")
    lines += ["", "Data-quality checks on cost_data (every account, all days):"]
    for name, passed, description in report.checks:
        lines.append(f"  {'ok  ' if passed else 'FAIL'} {name:<15} {description}")
    lines += ["", "Paid requests this month against each tenant's budget:"]
    for tenant, status in sorted(report.budgets.items()):
        lines.append(f"  {tenant:<14} {status.summary}")
    lines += ["", "Cost per tenant over the window:"]
    for tenant in report.tenants:
        lines.append(
            f"  {tenant.tenant_id:<14} {tenant.unblended_cost:>14,.2f} {tenant.currency}"
            f"  ({tenant.rows:,} rows)"
        )
        for service, amount in tenant.top_services:
            lines.append(f"      {service:<52} {amount:>12,.2f}")
    lines.extend(insights_lines(report.insights))
    return lines


def ensure_instance_config(home: Path | None = None) -> Path:
    """The local instance's ``dagster.yaml`` (see :mod:`finops_pipeline.cli.instance_config`)."""
    return write_instance_config(home or local_dagster_home())


def ui_workspace(home: Path | None = None) -> Path:
    """A ``workspace.yaml`` for ``dagster dev`` that works from any folder."""
    home = home or local_dagster_home()
    path = home / "workspace.yaml"
    path.write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: finops_pipeline.definitions\n"
        "      attribute: defs\n"
        "      location_name: finops_pipeline\n"
    )
    return path


def ui_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``finops ui`` starts ``dagster dev`` with: the demo's Dagster home."""
    env = dict(os.environ if environ is None else environ)
    env["DAGSTER_HOME"] = str(local_dagster_home(env))
    env.setdefault("FINOPS_HOME", str(finops_home(env)))
    return env
