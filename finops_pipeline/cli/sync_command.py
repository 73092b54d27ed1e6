"""``finops sync``: cost_data for chosen accounts and days, as in-process Dagster range runs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from finops_pipeline.cli.common import OUTPUT_OPTION, database, one_line, parse_day, verbose


@click.command("sync")
@click.option("--account", "accounts", multiple=True, required=True, help="Account id; repeat.")
@click.option("--start", required=True, help="First day, YYYY-MM-DD (UTC).")
@click.option("--end", required=True, help="Last day, YYYY-MM-DD (UTC), inclusive.")
@OUTPUT_OPTION
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=None,
    help="Retries for accounts that fail transiently, each in a new run "
    "[default: FINOPS_RETRY_MAX, else 2].",
)
@click.option(
    "--retry-wait",
    type=click.FloatRange(0, 600),
    default=None,
    help="Seconds before the first retry; doubles for each later one [default: 10].",
)
def sync(
    accounts: tuple[str, ...],
    start: str,
    end: str,
    output: str,
    retries: int | None,
    retry_wait: float | None,
) -> None:
    """Materialise cost_data for accounts and days as in-process Dagster range runs."""
    from finops_pipeline.cli.runner import open_instance, sync_accounts, validate_window
    from finops_pipeline.db.accounts import get_accounts
    from finops_pipeline.resources import default_resources
    from finops_pipeline.sync.retries import SyncRetrySettings

    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    try:
        validate_window(first, last)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    configured = SyncRetrySettings.from_env()
    retry = SyncRetrySettings(
        max_retries=configured.max_retries if retries is None else retries,
        first_wait_seconds=configured.first_wait_seconds if retry_wait is None else retry_wait,
    )
    with database() as connection:
        get_accounts(connection, list(accounts))  # unknown ids fail before any paid call
    # Dagster's console log (every step event, stack traces on failure) only with -v.
    log_level = "DEBUG" if verbose() else "CRITICAL"
    with open_instance() as instance:
        result = sync_accounts(
            accounts,
            first,
            last,
            instance=instance,
            resources=default_resources(),
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            retry=retry,
            on_retry=_print_retry,
        )
    for abandoned in result.abandoned_runs:
        click.echo(f"note: marked run {abandoned.run_id} failed: {abandoned.message}", err=True)
    if output == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        _print_sync(result)
    if not result.success:
        sys.exit(1)


def _print_retry(notice: Any) -> None:
    failures = "; ".join(f"{f.account_id}: {one_line(f.error)}" for f in notice.failures)
    count = len(notice.failures)
    click.echo(
        f"retry {notice.retry} of {notice.max_retries} in {notice.wait_seconds:g} s for "
        f"{count} account{'s' if count != 1 else ''} that failed transiently: {failures}",
        err=True,
    )


def _print_sync(result: Any) -> None:
    stats = result.statistics
    status = "succeeded" if result.success else "FAILED"
    click.echo(f"sync {status}: run {result.run_id}, {result.start}..{result.end}")
    loaded, failed = result.accounts_with("loaded"), result.accounts_with("failed")
    skipped = result.accounts_with("skipped")
    in_earlier = sum(1 for r in loaded if r.attempt < result.attempts)
    click.echo(f"  {'attempts':<18} {result.attempts}")
    click.echo(
        f"  {'accounts':<18} {len(loaded)} loaded"
        + (f" ({in_earlier} in earlier attempts)" if in_earlier else "")
        + f", {len(failed)} failed"
        + (f", {len(skipped)} skipped (not active)" if skipped else "")
        + f", of {len(result.accounts)}"
    )
    for key in (
        "row_count",
        "rows_inserted",
        "rows_restated",
        "rows_removed",
        "rows_unchanged",
        "paid_ce_requests",
        "azure_requests",
        "azure_qpu_consumed",
        "days_estimated",
        "days_final",
        "elapsed_seconds",
    ):
        if key in stats:
            click.echo(f"  {key:<18} {stats[key]}")
    for key, value in sorted(stats.items()):
        if key.startswith("total_unblended_cost_"):
            click.echo(f"  cost {key.rsplit('_', 1)[-1]:<13} {value}")
    for note in stats.get("no_data", []):
        click.echo(f"  note: {note}")
    for failure in failed:
        click.echo(f"error: account {failure.account_id}: {one_line(failure.error)}", err=True)
    if result.error and not failed:
        click.echo(f"error: {one_line(result.error)}", err=True)
