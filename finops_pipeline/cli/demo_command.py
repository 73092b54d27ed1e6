"""``finops demo``: the whole pipeline against the sandbox, on the embedded default."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from finops_pipeline.cli.common import database
from finops_pipeline.constants import DEMO_DEFAULT_DAYS


@click.command("demo")
@click.option(
    "--days",
    type=int,
    default=DEMO_DEFAULT_DAYS,
    show_default=True,
    help="Days of history to backfill, ending yesterday (UTC).",
)
def demo(days: int) -> None:
    """Run the whole pipeline against the sandbox clouds (AWS, Azure) on the embedded default.

    Registers sandbox accounts for three AWS tenants and an Azure tenant's subscriptions,
    backfills their history through the real cost_data asset as range runs, and prints a
    summary. Safe to re-run.
    """
    import warnings

    import dagster as dg

    # BackfillPolicy.single_run() is beta; the warning means nothing to someone trying the demo.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from finops_pipeline.cli.demo import (
        demo_window,
        ensure_instance_config,
        run_demo,
        sandbox_providers,
        summary_lines,
    )
    from finops_pipeline.cli.runner import open_instance
    from finops_pipeline.config import finops_home
    from finops_pipeline.db.urls import redact_url
    from finops_pipeline.resources import default_resources

    demo_window(days)  # a bad --days fails before anything starts
    database_url = os.environ.get("DATABASE_URL", "").strip()
    click.echo(
        f"Database: {redact_url(database_url)}"
        if database_url
        else f"Database: embedded PostgreSQL in {finops_home() / 'pgdata'} (starting it...)"
    )

    def progress(index: int, total: int, account: Any, result: Any, seconds: float) -> None:
        stats = result.statistics
        status = "ok" if result.success else "FAILED"
        requests = (
            f"{stats.get('azure_requests', 0):>3} requests, "
            f"{stats.get('azure_qpu_consumed', 0):g} QPU"
            if account.provider == "azure"
            else f"{stats.get('gcp_queries', 0):>3} queries, "
            f"{stats.get('gcp_bytes_billed', 0) / 2**20:g} MiB billed"
            if account.provider == "gcp"
            else f"{stats.get('paid_ce_requests', 0):>3} paid requests"
        )
        click.echo(
            f"[{index}/{total}] {account.tenant_id:<12} {account.name:<18} {account.number}  "
            f"{stats.get('row_count', 0):>7,} rows ({stats.get('rows_inserted', 0):,} new, "
            f"{stats.get('rows_restated', 0):,} restated)  "
            f"{requests}  {seconds:5.1f} s  {status}"
        )
        if result.error:
            click.echo(f"    error: {result.error}", err=True)

    ensure_instance_config()
    with database() as connection, open_instance() as instance:
        sources = " and ".join(spec.paid_api or spec.display_name for spec in sandbox_providers())
        click.echo(f"Backfilling the last {days} days from the sandbox {sources}...")
        report = run_demo(
            days=days,
            connection=connection,
            instance=instance,
            resources=default_resources(),
            progress=progress,
        )
    click.echo("")
    for line in summary_lines(report):
        click.echo(line)
    # As the user typed it (e.g. .venv/bin/finops), so it works without activating the venv.
    program = shlex.quote(sys.argv[0] if Path(sys.argv[0]).name == "finops" else "finops")
    tenant = report.tenants[0].tenant_id if report.tenants else "acme-retail"
    next_steps = [
        (f"{program} costs --tenant {tenant}", "a tenant's costs per service and day"),
        (f"{program} recommendations --tenant {tenant}", "its top savings recommendations"),
        (f"{program} ui", "the Dagster UI on the same data (Ctrl-C stops it)"),
        (f"{program} db shell", "psql on the database"),
    ]
    width = max(len(command) for command, _ in next_steps)
    click.echo("")
    click.echo("Next:")
    for command, meaning in next_steps:
        click.echo(f"  {command:<{width}}   {meaning}")
    if not report.success:
        sys.exit(1)
