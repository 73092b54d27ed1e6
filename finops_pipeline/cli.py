"""The ``finops`` command line. Its commands and flags are a stable interface for scripts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
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


if __name__ == "__main__":
    main()
