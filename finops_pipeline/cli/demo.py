"""``finops demo``: the whole product on the embedded default, against the sandboxes.

Registers sandbox AWS accounts for a few tenants and an Azure tenant's subscriptions (credentials encrypted for real), backfills their
history through the real ``cost_data`` asset as in-process range runs, and summarises what is
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
from finops_pipeline.constants import PROVIDER_AWS, PROVIDER_AZURE, PROVIDER_GCP
from finops_pipeline.db.accounts import get_account, register_account
from finops_pipeline.errors import ConfigurationError, CredentialError
from finops_pipeline.providers.aws.constants import CE_PRICE_PER_REQUEST_USD
from finops_pipeline.providers.aws.sandbox.catalogue import DEMO_TENANTS, SandboxTenant
from finops_pipeline.providers.aws.sandbox.hook import (
    SANDBOX_ENDPOINT_URL,
    advance_generation,
    is_sandbox_endpoint,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.sandbox.service import history_start
from finops_pipeline.providers.azure.sandbox import DEFAULT_TENANTS as AZURE_DEMO_TENANTS
from finops_pipeline.providers.azure.sandbox import (
    SANDBOX_RESOURCE_MANAGER as AZURE_SANDBOX_RESOURCE_MANAGER,
)
from finops_pipeline.providers.azure.sandbox import SandboxTenant as AzureSandboxTenant
from finops_pipeline.providers.azure.sandbox import sandbox_credentials as azure_sandbox_credentials
from finops_pipeline.providers.azure.spec import is_sandbox_endpoint as is_azure_sandbox_endpoint
from finops_pipeline.security.ciphertext import CURRENT_KEY_ENV, KeyRing, encrypt
from finops_pipeline.security.credentials import (
    Credentials,
    open_credentials,
    serialize_credentials,
)
from finops_pipeline.security.keys import ensure_local_key, load_key_ring

TOP_SERVICES = 3
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


@dataclass(frozen=True)
class TenantSummary:
    """What ``cost_data`` holds for one tenant's demo accounts over the demo window."""

    tenant_id: str
    rows: int
    unblended_cost: Decimal
    currency: str
    top_services: list[tuple[str, Decimal]]


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

    def total(self, statistic: str) -> int:
        return sum(int(sync.statistics.get(statistic, 0) or 0) for sync in self.syncs)

    @property
    def success(self) -> bool:
        return all(sync.success for sync in self.syncs) and self.insights.success


ProgressCallback = Callable[[int, int, DemoAccount, SyncResult, float], None]


def demo_window(days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last ``days`` complete UTC days, within Cost Explorer's daily history.

    Raises:
        ConfigurationError: ``days`` is not positive or reaches past the daily history.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    end = today - dt.timedelta(days=1)
    longest = (end - history_start(today)).days + 1
    if not 1 <= days <= longest:
        raise ConfigurationError(
            f"--days must be between 1 and {longest}: Cost Explorer keeps daily data for the "
            "current month and the previous 13."
        )
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
    tenants: Sequence[SandboxTenant] = DEMO_TENANTS,
) -> list[DemoAccount]:
    """Register each tenant's sandbox accounts once; later runs find the same rows.

    An existing row whose credentials no longer decrypt (the local key was replaced) gets its
    sandbox credentials encrypted again under the current key; that is only done for sandbox
    rows, whose credentials the sandbox derives anyway.

    Raises:
        ConfigurationError: a non-sandbox account already uses a demo account number.
    """
    accounts: list[DemoAccount] = []
    for tenant in tenants:
        for spec in tenant.accounts:
            accounts.append(
                _ensure_sandbox_account(
                    connection,
                    ring,
                    tenant_id=tenant.tenant_id,
                    name=spec.name,
                    provider=PROVIDER_AWS,
                    number=spec.number,
                    credentials=sandbox_credentials(spec.number),
                    endpoint_url=SANDBOX_ENDPOINT_URL,
                    is_sandbox=is_sandbox_endpoint,
                )
            )
    return accounts


def ensure_azure_demo_subscriptions(
    connection: psycopg.Connection,
    ring: KeyRing,
    tenants: Sequence[AzureSandboxTenant] = AZURE_DEMO_TENANTS,
) -> list[DemoAccount]:
    """Register each Azure sandbox tenant's readable subscriptions once, as
    :func:`ensure_demo_accounts` does for AWS; the demo tenant is named after the Entra tenant."""
    accounts: list[DemoAccount] = []
    for tenant in tenants:
        credentials = azure_sandbox_credentials(tenant)
        for subscription in tenant.subscriptions:
            if not subscription.reader:
                continue  # kept in the sandbox to show a 403; the demo loads what it can read
            accounts.append(
                _ensure_sandbox_account(
                    connection,
                    ring,
                    tenant_id=tenant.name,
                    name=subscription.name,
                    provider=PROVIDER_AZURE,
                    number=subscription.subscription_id,
                    credentials=credentials,
                    endpoint_url=AZURE_SANDBOX_RESOURCE_MANAGER,
                    is_sandbox=is_azure_sandbox_endpoint,
                )
            )
    return accounts


def _ensure_sandbox_account(
    connection: psycopg.Connection,
    ring: KeyRing,
    *,
    tenant_id: str,
    name: str,
    provider: str,
    number: str,
    credentials: Credentials,
    endpoint_url: str,
    is_sandbox: Callable[[str | None], bool],
) -> DemoAccount:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id::text FROM cloud_accounts "
            "WHERE tenant_id = %s AND provider = %s AND provider_account_id = %s",
            (tenant_id, provider, number),
        )
        row = cursor.fetchone()
    if row is None:
        account_id = register_account(
            connection,
            ring,
            tenant_id=tenant_id,
            name=name,
            provider=provider,
            provider_account_id=number,
            credentials=credentials,
            endpoint_url=endpoint_url,
        )
        return DemoAccount(account_id, tenant_id, name, number, True, provider)
    account = get_account(connection, row[0])
    if not is_sandbox(account.endpoint_url):
        raise ConfigurationError(
            f"Tenant {tenant_id} already has {provider} account {number} with a real endpoint; "
            "the demo only touches sandbox accounts. Use another database (FINOPS_HOME or "
            "DATABASE_URL) for the demo."
        )
    try:
        open_credentials(account, ring)
    except CredentialError:
        blob = encrypt(serialize_credentials(credentials), ring, account.encryption_context)
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE cloud_accounts SET credentials_encrypted = %s, updated_at = now() "
                "WHERE id = %s",
                (blob, account.id),
            )
    return DemoAccount(account.id, tenant_id, account.name, number, False, provider)


def gcp_demo_accounts(connection: psycopg.Connection, ring: KeyRing) -> list[DemoAccount]:
    """The GCP tenant's projects of the sandbox billing export, registered once."""
    from finops_pipeline.providers.gcp.sandbox.demo import ensure_demo_projects

    return [
        DemoAccount(p.account_id, p.tenant_id, p.name, p.project_id, p.created, PROVIDER_GCP)
        for p in ensure_demo_projects(connection, ring)
    ]


def count_rows(connection: psycopg.Connection, account_ids: Sequence[str]) -> int:
    """Rows ``cost_data`` holds for these accounts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM cost_data WHERE cloud_account_id::text = ANY(%s)",
            (list(account_ids),),
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def tenant_summaries(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    top: int = TOP_SERVICES,
) -> list[TenantSummary]:
    """Rows, cost and costliest services per tenant over ``start``..``end``, from the table."""
    window = (list(account_ids), start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT tenant_id, currency, count(*), sum(unblended_cost)
            FROM cost_data
            WHERE cloud_account_id::text = ANY(%s) AND date BETWEEN %s AND %s
            GROUP BY tenant_id, currency ORDER BY tenant_id, currency
            """,
            window,
        )
        totals = cursor.fetchall()
        cursor.execute(
            """
            SELECT tenant_id, service, cost FROM (
                SELECT tenant_id, service, sum(unblended_cost) AS cost,
                       row_number() OVER (PARTITION BY tenant_id
                                          ORDER BY sum(unblended_cost) DESC) AS rank
                FROM cost_data
                WHERE cloud_account_id::text = ANY(%s) AND date BETWEEN %s AND %s
                GROUP BY tenant_id, service
            ) ranked WHERE rank <= %s ORDER BY tenant_id, rank
            """,
            (*window, top),
        )
        services: dict[str, list[tuple[str, Decimal]]] = {}
        for tenant_id, service, cost in cursor.fetchall():
            services.setdefault(tenant_id, []).append((service, Decimal(cost)))
    return [
        TenantSummary(
            tenant_id=tenant_id,
            rows=int(rows),
            unblended_cost=Decimal(cost),
            currency=currency,
            top_services=services.get(tenant_id, []),
        )
        for tenant_id, currency, rows, cost in totals
    ]


def run_demo(
    *,
    days: int,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    progress: ProgressCallback | None = None,
    tenants: Sequence[SandboxTenant] = DEMO_TENANTS,
    azure_tenants: Sequence[AzureSandboxTenant] = AZURE_DEMO_TENANTS,
    today: dt.date | None = None,
    include_gcp: bool = True,
) -> DemoReport:
    """Register the sandbox tenants and backfill ``days`` days, one range run per AWS account and
    Azure subscription, and one for the GCP billing export's projects."""
    started = time.monotonic()
    start, end = demo_window(days, today)
    ring, key_source = key_ring_for_demo()
    # Each demo run is a new pull from the sandbox, as a later read of Cost Explorer would be.
    report = DemoReport(
        start=start, end=end, key_source=key_source, pull_generation=advance_generation()
    )
    report.accounts = ensure_demo_accounts(connection, ring, tenants)
    report.accounts += ensure_azure_demo_subscriptions(connection, ring, azure_tenants)
    # One range run per AWS account and Azure subscription; the GCP projects of one billing
    # export share one run, so one BigQuery query serves them all.
    groups: list[tuple[DemoAccount, list[str]]] = [
        (account, [account.account_id]) for account in report.accounts
    ]
    if include_gcp:
        gcp_projects = gcp_demo_accounts(connection, ring)
        report.accounts.extend(gcp_projects)
        groups.append(
            (
                DemoAccount(
                    gcp_projects[0].account_id,
                    gcp_projects[0].tenant_id,
                    f"{len(gcp_projects)} GCP projects",
                    "billing export",
                    any(project.created for project in gcp_projects),
                    PROVIDER_GCP,
                ),
                [project.account_id for project in gcp_projects],
            )
        )
    ids = [account.account_id for account in report.accounts]
    report.rows_before = count_rows(connection, ids)
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
    report.rows_after = count_rows(connection, ids)
    report.tenants = tenant_summaries(connection, ids, start, end)
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
    cost = Decimal(paid) * Decimal(CE_PRICE_PER_REQUEST_USD)
    lines = [
        f"Backfilled {report.start}..{report.end} "
        f"({(report.end - report.start).days + 1} days) for {len(report.accounts)} accounts "
        f"in {report.elapsed_seconds:.1f} s (sandbox pull {report.pull_generation}).",
        f"  rows in cost_data   {report.rows_after:,} (before this run: {report.rows_before:,})",
        f"  rows this run       {report.total('rows_inserted'):,} new, "
        f"{report.total('rows_restated'):,} restated, {report.total('rows_unchanged'):,} "
        f"unchanged, {report.total('rows_removed'):,} removed",
        f"  paid CE requests    {paid} (${cost:.2f} on real AWS), {len(report.syncs)} range runs",
        f"  BigQuery bytes      {report.total('gcp_bytes_billed'):,} billed "
        f"({report.total('gcp_bytes_processed'):,} processed) in "
        f"{report.total('gcp_queries')} queries",
        *(
            [
                f"  Azure queries       {report.total('azure_requests')} requests (not billed), "
                f"{report.total('azure_qpu_consumed')} QPU of the tenant's quota"
            ]
            if report.total("azure_requests")
            else []
        ),
        f"  credentials key     {report.key_source}",
        "",
        "Cost per tenant over the window:",
    ]
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
