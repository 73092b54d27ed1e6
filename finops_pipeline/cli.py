"""The ``finops`` command line. Its commands and flags are a stable interface for scripts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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

    with _database() as connection:
        get_accounts(connection, list(accounts))  # unknown ids fail before any paid call
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


# --- accounts and keys: logic lives in onboarding.py, key_rotation.py and aws_roles.py -----

SECRET_ENV = "FINOPS_AWS_SECRET_ACCESS_KEY"


@contextmanager
def _database() -> Iterator[Any]:
    from finops_pipeline.db.engine import create_finops_engine, psycopg_connection

    engine = create_finops_engine()
    try:
        with psycopg_connection(engine) as connection:
            yield connection
    finally:
        engine.dispose()


def _read_secret(secret_stdin: bool) -> Any:
    from finops_pipeline.credentials import Secret, register_secrets

    if secret_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise click.UsageError("--secret-stdin was given but stdin held no secret")
    else:
        value = os.environ.get(SECRET_ENV, "").strip()
        if not value:
            return None
    register_secrets(value)
    return Secret(value)


@main.group()
def accounts() -> None:
    """Onboard and manage cloud accounts (credentials are stored encrypted)."""


@accounts.command("add")
@click.option("--tenant", "tenant_id", required=True, help="The tenant the account belongs to.")
@click.option("--name", required=True, help="A display name.")
@click.option("--provider", default="aws", show_default=True, help="Only aws is supported.")
@click.option("--account-number", required=True, help="The 12-digit AWS account number.")
@click.option(
    "--access-key-id",
    default=None,
    help=f"Access key id; the secret comes from {SECRET_ENV} or --secret-stdin, never argv.",
)
@click.option("--secret-stdin", is_flag=True, help="Read the secret access key from stdin.")
@click.option("--role-arn", default=None, help="IAM role the pipeline assumes (external id).")
@click.option("--endpoint-url", default=None, help="Cost Explorer endpoint override.")
@click.option(
    "--pipeline-principal-arn",
    default=None,
    envvar="FINOPS_PIPELINE_AWS_PRINCIPAL_ARN",
    help="The pipeline's AWS principal, for the printed trust policy.",
)
@click.option(
    "--validate",
    "validate_now",
    is_flag=True,
    help="Validate now (one paid Cost Explorer request); remove the account if it fails.",
)
def accounts_add(
    tenant_id: str,
    name: str,
    provider: str,
    account_number: str,
    access_key_id: str | None,
    secret_stdin: bool,
    role_arn: str | None,
    endpoint_url: str | None,
    pipeline_principal_arn: str | None,
    validate_now: bool,
) -> None:
    """Register an account. Prints only its new id on stdout; messages go to stderr."""
    from finops_pipeline.aws_roles import (
        PRINCIPAL_ARN_PLACEHOLDER,
        permission_policy,
        pipeline_principal_from_environment,
        policy_json,
        resolve_principal_arn,
        trust_policy,
    )
    from finops_pipeline.keys import load_key_ring
    from finops_pipeline.onboarding import add_account, remove_account, validate_account

    secret = _read_secret(secret_stdin) if access_key_id else None
    if role_arn and (secret_stdin or os.environ.get(SECRET_ENV)):
        click.echo(f"note: ignoring the secret ({SECRET_ENV}/--secret-stdin) for a role", err=True)
    ring = load_key_ring()
    principal = pipeline_principal_from_environment()
    with _database() as connection:
        added = add_account(
            connection,
            ring,
            tenant_id=tenant_id,
            name=name,
            provider=provider,
            provider_account_id=account_number,
            access_key_id=access_key_id,
            secret_access_key=secret,
            role_arn=role_arn,
            endpoint_url=endpoint_url,
        )
        click.echo(f"registered {added.credential_kind} account {added.account_id}", err=True)
        if added.external_id is not None:
            arn = resolve_principal_arn(principal, pipeline_principal_arn)
            click.echo(f"\nexternal id for tenant {tenant_id}: {added.external_id}", err=True)
            click.echo("\ntrust policy for the role:", err=True)
            click.echo(
                policy_json(trust_policy(arn or PRINCIPAL_ARN_PLACEHOLDER, added.external_id)),
                err=True,
            )
            click.echo("\npermission policy for the role:", err=True)
            click.echo(policy_json(permission_policy()), err=True)
            click.echo(f"\nthen run: finops accounts validate {added.account_id}\n", err=True)
        if validate_now:
            report = validate_account(connection, ring, added.account_id, principal=principal)
            _print_validation(report, err=True)
            if not report.ok:
                remove_account(connection, added.account_id)
                _fail("validation failed; the account was not kept")
    click.echo(added.account_id)


@accounts.command("list")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def accounts_list(output: str) -> None:
    """List accounts (never their credentials)."""
    from finops_pipeline.onboarding import account_summaries

    with _database() as connection:
        rows = account_summaries(connection)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['id']}  {row['tenant_id']:<16} {row['provider']} {row['provider_account_id']}"
            f"  {row['credential_kind']:<14} {row['status']:<8} {row['name']}"
        )


def _print_validation(report: Any, *, err: bool = False) -> None:
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"  {mark} {check.name}: {check.detail}", err=err)
    click.echo(
        f"  paid Cost Explorer requests: {report.paid_requests} (${report.paid_request_cost_usd})",
        err=err,
    )


@accounts.command("validate")
@click.argument("account_id")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def accounts_validate(account_id: str, output: str) -> None:
    """Prove the credentials work: identity, role safety, and a one-day Cost Explorer probe."""
    from finops_pipeline.aws_roles import pipeline_principal_from_environment
    from finops_pipeline.keys import load_key_ring
    from finops_pipeline.onboarding import validate_account

    with _database() as connection:
        report = validate_account(
            connection,
            load_key_ring(),
            account_id,
            principal=pipeline_principal_from_environment(),
            ce_endpoint_url=os.environ.get("FINOPS_CE_ENDPOINT_URL") or None,
        )
    if output == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(f"account {account_id}: {'valid' if report.ok else 'INVALID'}")
        _print_validation(report)
    if report.unsafe_trust_policy:
        click.echo("error: the role does not require the external id; account disabled", err=True)
    if not report.ok:
        sys.exit(1)


@accounts.command("disable")
@click.argument("account_id")
def accounts_disable(account_id: str) -> None:
    """Stop collecting an account (its data and credentials are kept)."""
    from finops_pipeline.onboarding import set_status

    with _database() as connection:
        set_status(connection, account_id, "disabled")
    click.echo(f"disabled {account_id}", err=True)


@accounts.command("enable")
@click.argument("account_id")
def accounts_enable(account_id: str) -> None:
    """Collect a disabled account again."""
    from finops_pipeline.onboarding import set_status

    with _database() as connection:
        set_status(connection, account_id, "active")
    click.echo(f"enabled {account_id}", err=True)


@accounts.command("remove")
@click.argument("account_id")
@click.option("--purge", is_flag=True, help="Also delete its cost history and run outcomes.")
def accounts_remove(account_id: str, purge: bool) -> None:
    """Delete an account and its credentials; its cost history stays unless --purge."""
    from finops_pipeline.onboarding import remove_account

    with _database() as connection:
        removed = remove_account(connection, account_id, purge=purge)
    detail = (
        f", purged {removed.cost_rows_deleted} cost rows and {removed.sync_runs_deleted} run "
        "outcomes"
        if purge
        else "; its cost history is kept"
    )
    click.echo(f"removed {account_id}{detail}", err=True)


@main.group()
def keys() -> None:
    """Encryption keys for stored credentials."""


@keys.command("generate")
@click.option("--local", is_flag=True, help="Write the embedded default's local key file instead.")
def keys_generate(local: bool) -> None:
    """Print a new random 256-bit key (64 hex characters) for ENCRYPTION_KEY."""
    from finops_pipeline.crypto import generate_key
    from finops_pipeline.keys import ensure_local_key

    if local:
        click.echo(str(ensure_local_key()))
        return
    click.echo(generate_key())


@keys.command("rotate")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def keys_rotate(batch_size: int, dry_run: bool, output: str) -> None:
    """Re-encrypt every credential under ENCRYPTION_KEY (old keys in ENCRYPTION_KEYS_PREVIOUS)."""
    from finops_pipeline.key_rotation import rotate_credentials
    from finops_pipeline.keys import load_key_ring

    ring = load_key_ring()
    with _database() as connection:
        report = rotate_credentials(connection, ring, batch_size=batch_size, dry_run=dry_run)
    if output == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        prefix = "would be " if dry_run else ""
        click.echo(f"{prefix}re-encrypted:    {report.reencrypted}")
        click.echo(f"already current: {report.already_current}")
        click.echo(f"failed:          {report.failed}")
        for failure in report.failures:
            click.echo(f"  {failure.account_id}: {failure.error_type}: {failure.message}", err=True)
    if not report.ok:
        sys.exit(1)


@main.group()
def export() -> None:
    """Export cost data in open formats."""


@export.command("focus")
@click.option("--tenant", "tenant_id", required=True, help="The tenant to export.")
@click.option("--start", required=True, help="First usage day, YYYY-MM-DD (UTC).")
@click.option("--end", required=True, help="Last usage day, YYYY-MM-DD (UTC), inclusive.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
)
@click.option("--output", default=None, help="File to write; CSV goes to stdout without it.")
def export_focus_command(
    tenant_id: str, start: str, end: str, export_format: str, output: str | None
) -> None:
    """Write one tenant's costs as FinOps FOCUS 1.2 rows (the cost_data_focus view).

    Reads through the reporting role's row-level security, so the file can only hold that
    tenant's rows.
    """
    from finops_pipeline.db.focus_export import export_focus

    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    if export_format == "parquet" and not output:
        raise click.UsageError("--format parquet needs --output FILE")
    with _database() as connection:
        rows = export_focus(
            connection,
            tenant_id,
            first,
            last,
            export_format=export_format,
            output=Path(output) if output else sys.stdout,
        )
    click.echo(
        f"exported {rows:,} FOCUS rows for {tenant_id}, {first}..{last}"
        + (f" to {output}" if output else ""),
        err=True,
    )


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
    with _database() as connection, open_instance() as instance:
        click.echo(f"Backfilling the last {days} days from the sandbox Cost Explorer...")
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
