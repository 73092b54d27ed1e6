"""The ``finops`` command line. Its commands and flags are a stable interface for scripts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from finops_pipeline.errors import FinopsError

logger = logging.getLogger("finops_pipeline.cli")


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _parse_day(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date", param_hint=flag) from None


class FinopsGroup(click.Group):
    """Turns typed project errors into one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FinopsError as error:
            _fail(f"{error} [{type(error).__name__}]")


@click.group(cls=FinopsGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def main(verbose: bool) -> None:
    """Collect cloud cost data into Postgres with Dagster.

    Reads DATABASE_URL (unset: the embedded PostgreSQL under FINOPS_HOME) and ENCRYPTION_KEY.
    """
    from finops_pipeline.cost_explorer.client import quiet_aws_sdk_loggers
    from finops_pipeline.credentials import install_redaction

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet_aws_sdk_loggers()
    install_redaction()


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to DATABASE_URL (or the embedded server)."""
    from finops_pipeline.db.engine import create_finops_engine
    from finops_pipeline.db.migrate import current_revision

    engine = create_finops_engine(migrate=True)
    try:
        click.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@main.command()
@click.option("--account", "accounts", multiple=True, required=True, help="Account id; repeat.")
@click.option("--start", required=True, help="First day, YYYY-MM-DD (UTC).")
@click.option("--end", required=True, help="Last day, YYYY-MM-DD (UTC), inclusive.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def sync(accounts: tuple[str, ...], start: str, end: str, output: str) -> None:
    """Materialise cost_data for accounts and days as one in-process Dagster range run."""
    from finops_pipeline.resources import default_resources
    from finops_pipeline.runner import open_instance, sync_accounts, validate_window

    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    try:
        validate_window(first, last)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    from finops_pipeline.db.accounts import get_accounts
    from finops_pipeline.db.engine import create_finops_engine, psycopg_connection

    engine = create_finops_engine()
    try:
        with psycopg_connection(engine) as connection:
            get_accounts(connection, list(accounts))  # unknown ids fail before any paid call
    finally:
        engine.dispose()
    with open_instance() as instance:
        result = sync_accounts(
            accounts, first, last, instance=instance, resources=default_resources()
        )
    if output == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        _print_sync(result)
    if not result.success:
        sys.exit(1)


def _print_sync(result: Any) -> None:
    stats = result.statistics
    status = "succeeded" if result.success else "FAILED"
    click.echo(f"sync {status}: run {result.run_id}, {result.start}..{result.end}")
    for key in (
        "row_count",
        "rows_inserted",
        "rows_restated",
        "rows_removed",
        "rows_unchanged",
        "paid_ce_requests",
        "days_estimated",
        "days_final",
        "elapsed_seconds",
    ):
        if key in stats:
            click.echo(f"  {key:<18} {stats[key]}")
    for key, value in sorted(stats.items()):
        if key.startswith("total_unblended_cost_"):
            click.echo(f"  cost {key.rsplit('_', 1)[-1]:<13} {value}")
    if result.error:
        click.echo(f"error: {result.error}", err=True)


@main.command()
@click.option(
    "--days",
    type=int,
    default=90,
    show_default=True,
    help="Days of history to backfill, ending yesterday (UTC).",
)
def demo(days: int) -> None:
    """Run the whole pipeline against the sandbox Cost Explorer on the embedded default.

    Registers sandbox accounts for three tenants, backfills their history through the real
    cost_data asset as range runs, and prints a summary. Safe to re-run.
    """
    import warnings

    import dagster as dg

    # BackfillPolicy.single_run() is beta; the warning means nothing to someone trying the demo.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from finops_pipeline.db.embedded import finops_home
    from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
    from finops_pipeline.db.urls import redact_url
    from finops_pipeline.demo import (
        demo_window,
        ensure_instance_config,
        run_demo,
        summary_lines,
    )
    from finops_pipeline.resources import default_resources
    from finops_pipeline.runner import open_instance

    demo_window(days)  # a bad --days fails before anything starts
    database = os.environ.get("DATABASE_URL", "").strip()
    click.echo(
        f"Database: {redact_url(database)}"
        if database
        else f"Database: embedded PostgreSQL in {finops_home() / 'pgdata'} (starting it...)"
    )

    def progress(index: int, total: int, account: Any, result: Any, seconds: float) -> None:
        stats = result.statistics
        status = "ok" if result.success else "FAILED"
        click.echo(
            f"[{index}/{total}] {account.tenant_id:<12} {account.name:<18} {account.number}  "
            f"{stats.get('row_count', 0):>7,} rows ({stats.get('rows_inserted', 0):,} new, "
            f"{stats.get('rows_restated', 0):,} restated)  "
            f"{stats.get('paid_ce_requests', 0):>3} paid requests  {seconds:5.1f} s  {status}"
        )
        if result.error:
            click.echo(f"    error: {result.error}", err=True)

    ensure_instance_config()
    engine = create_finops_engine()
    try:
        with psycopg_connection(engine) as connection, open_instance() as instance:
            click.echo(f"Backfilling the last {days} days from the sandbox Cost Explorer...")
            report = run_demo(
                days=days,
                connection=connection,
                instance=instance,
                resources=default_resources(),
                progress=progress,
            )
    finally:
        engine.dispose()
    click.echo("")
    for line in summary_lines(report):
        click.echo(line)
    click.echo("")
    click.echo("Open the Dagster UI on the same data (cost_data, its partitions and runs):")
    # As the user typed it (e.g. .venv/bin/finops), so it works without activating the venv.
    program = sys.argv[0] if Path(sys.argv[0]).name == "finops" else "finops"
    click.echo(f"  {shlex.quote(program)} ui")
    if not report.success:
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
def ui(host: str, port: int) -> None:
    """Open the Dagster UI (dagster dev) on the local instance the CLI and the demo use."""
    from finops_pipeline.demo import ensure_instance_config, ui_environment, ui_workspace

    env = ui_environment()
    ensure_instance_config(Path(env["DAGSTER_HOME"]))
    workspace = ui_workspace(Path(env["DAGSTER_HOME"]))
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace)]
    command += ["-h", host, "-p", str(port)]
    click.echo(f"DAGSTER_HOME={env['DAGSTER_HOME']} {' '.join(command[1:])}", err=True)
    os.execvpe(sys.executable, command, env)


if __name__ == "__main__":
    main()
