"""The ``finops`` command line. Its commands and flags are a stable interface for scripts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from finops_pipeline.constants import DEMO_DEFAULT_DAYS
from finops_pipeline.errors import FinopsError, typed_error
from finops_pipeline.providers import provider_names

logger = logging.getLogger("finops_pipeline.cli")


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _parse_day(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date", param_hint=flag) from None


def _error_line(error: BaseException) -> str:
    """One line for any error: typed errors as they are, AWS SDK, database and network errors
    translated; the secrets the process knows are masked."""
    from finops_pipeline.security.redaction import GLOBAL_REDACTOR

    typed = typed_error(error)
    if typed is None:
        line = f"unexpected {type(error).__name__}: {error}. Run with -v for the traceback."
    else:
        line = f"{typed} [{type(typed).__name__}]"
    return GLOBAL_REDACTOR.redact(" ".join(line.split()))


class FinopsGroup(click.Group):
    """The one guard every command runs under: an error becomes one clear line and exit 1.

    Usage errors keep click's exit 2; ``-v`` also logs the traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("verbose"):
                logger.error("%s failed", ctx.info_name, exc_info=error)
            _fail(_error_line(error))


@click.group(cls=FinopsGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
def main(verbose: bool) -> None:
    """Collect cloud cost data into Postgres with Dagster.

    Reads DATABASE_URL (unset: the embedded PostgreSQL under FINOPS_HOME) and ENCRYPTION_KEY.
    """
    from finops_pipeline.providers.aws.client import quiet_aws_sdk_loggers
    from finops_pipeline.security.redaction import install_redaction

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        handler.addFilter(_ours_only)
        # Dagster's own warnings (e.g. that BackfillPolicy is beta) mean nothing to a user of
        # a command; -v shows them. Matched by module, so dagster need not be imported here.
        warnings.filterwarnings("ignore", module="dagster")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    quiet_aws_sdk_loggers()
    install_redaction()


def _ours_only(record: logging.LogRecord) -> bool:
    """Without -v: no Dagster log lines below errors (e.g. "no dagster.yaml found"), and no
    per-account failure lines, which `sync` prints once each in its summary."""
    if record.name == "dagster" or record.name.startswith("dagster."):
        return record.levelno >= logging.ERROR
    return record.name != "finops_pipeline.sync.collection"


def _verbose() -> bool:
    return bool(click.get_current_context().find_root().params.get("verbose"))


@main.group()
def db() -> None:
    """The database: schema, connection URL, psql, and stopping the embedded server."""


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


def _configured_database_url() -> str:
    return os.environ.get("DATABASE_URL", "").strip()


@db.command("url")
def db_url() -> None:
    """Print the URL of the database in use (DATABASE_URL or the embedded one), password masked."""
    from finops_pipeline.db.embedded import (
        PGDATA_DIRNAME,
        finops_home,
        running_postmaster,
        socket_url,
    )
    from finops_pipeline.db.urls import redact_url

    configured = _configured_database_url()
    if configured:
        click.echo(redact_url(configured))
        click.echo("(from DATABASE_URL)", err=True)
        return
    pgdata = finops_home() / PGDATA_DIRNAME
    postmaster = running_postmaster(pgdata.resolve())
    click.echo(socket_url(postmaster.socket_dir if postmaster else pgdata.resolve()))
    if postmaster is None:
        click.echo(
            f"(the embedded server in {pgdata} is not running now: any finops command, "
            "`finops ui` or `finops db shell` starts it, and it stops when the last of them exits)",
            err=True,
        )


@db.command("shell")
def db_shell() -> None:
    """Open psql on the database in use (starting the embedded server for the session)."""
    import signal
    import subprocess

    from finops_pipeline.db.embedded import resolve_database_url
    from finops_pipeline.db.psql import find_psql, psql_command

    psql = find_psql()
    url, _embedded = resolve_database_url()  # the embedded server stays up until psql exits
    argv, extra_env = psql_command(psql, url)
    child = subprocess.Popen(argv, env={**os.environ, **extra_env})
    # Ctrl-C belongs to psql (it cancels the running query); this process only waits.
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.exit(code)


@db.command("stop")
@click.option("--force", is_flag=True, help="Stop it even while other processes use it.")
def db_stop(force: bool) -> None:
    """Stop the embedded PostgreSQL server (not a DATABASE_URL server)."""
    from finops_pipeline.db.embedded import stop_server

    if _configured_database_url():
        _fail(
            "DATABASE_URL is set, so the embedded server is not in use; `finops db stop` only "
            "stops the embedded server. Stop your own server with its own tools, or unset "
            "DATABASE_URL."
        )
    report = stop_server(force=force)
    dropped = (
        f"; dropped {report.dead_users_dropped} dead process(es) from its users"
        if report.dead_users_dropped
        else ""
    )
    if not report.was_running:
        click.echo(f"The embedded PostgreSQL server in {report.pgdata} is not running{dropped}.")
        return
    users = (
        f" (still used by {', '.join(report.live_users_stopped)})"
        if report.live_users_stopped
        else ""
    )
    click.echo(
        f"Stopped the embedded PostgreSQL server in {report.pgdata} (pid {report.server_pid})"
        f"{users}{dropped}."
    )


@main.command()
@click.option("--account", "accounts", multiple=True, required=True, help="Account id; repeat.")
@click.option("--start", required=True, help="First day, YYYY-MM-DD (UTC).")
@click.option("--end", required=True, help="Last day, YYYY-MM-DD (UTC), inclusive.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
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
    from finops_pipeline.resources import default_resources
    from finops_pipeline.sync.retries import SyncRetrySettings

    first, last = _parse_day(start, "--start"), _parse_day(end, "--end")
    try:
        validate_window(first, last)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    configured = SyncRetrySettings.from_env()
    retry = SyncRetrySettings(
        max_retries=configured.max_retries if retries is None else retries,
        first_wait_seconds=configured.first_wait_seconds if retry_wait is None else retry_wait,
    )
    from finops_pipeline.db.accounts import get_accounts

    with _database() as connection:
        get_accounts(connection, list(accounts))  # unknown ids fail before any paid call
    # Dagster's console log (every step event, stack traces on failure) only with -v.
    log_level = "DEBUG" if _verbose() else "CRITICAL"
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


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _print_retry(notice: Any) -> None:
    failures = "; ".join(f"{f.account_id}: {_one_line(f.error)}" for f in notice.failures)
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
        click.echo(f"error: account {failure.account_id}: {_one_line(failure.error)}", err=True)
    if result.error and not failed:
        click.echo(f"error: {_one_line(result.error)}", err=True)


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
    from finops_pipeline.security.credentials import Secret
    from finops_pipeline.security.redaction import register_secrets

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


def _tenant_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Every option that takes a tenant uses this: a blank one is a usage error (exit 2)."""
    from finops_pipeline.db.tenants import check_tenant_id

    if value is None:
        return None
    try:
        return check_tenant_id(value)
    except FinopsError as error:
        raise click.BadParameter(str(error)) from None


@main.group()
def accounts() -> None:
    """Onboard and manage cloud accounts (credentials are stored encrypted)."""


@accounts.command("add")
@click.option(
    "--tenant",
    "tenant_id",
    required=True,
    callback=_tenant_id,
    help="The tenant the account belongs to (not blank, no surrounding spaces).",
)
@click.option("--name", required=True, help="A display name.")
@click.option(
    "--provider",
    default="aws",
    show_default=True,
    help=f"The cloud; registered: {', '.join(provider_names())}.",
)
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
@click.option(
    "--management-account",
    is_flag=True,
    help="An AWS Organizations management (payer) account: its members are discovered "
    "(Cost Explorer LINKED_ACCOUNT values, paid) and collected as accounts of their own "
    "with its credentials.",
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
    management_account: bool,
) -> None:
    """Register an account. Prints only its new id on stdout; messages go to stderr."""
    from finops_pipeline.cli.onboarding import add_account, validate_new_account
    from finops_pipeline.providers.aws.roles import (
        PRINCIPAL_ARN_PLACEHOLDER,
        permission_policy,
        pipeline_principal_from_environment,
        policy_json,
        resolve_principal_arn,
        trust_policy,
    )
    from finops_pipeline.security.keys import load_key_ring

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
            management_account=management_account,
        )
        click.echo(f"registered {added.credential_kind} account {added.account_id}", err=True)
        if management_account:
            click.echo(
                f"management account: its members are discovered within a day by the "
                f"aws_organization_members_sensor, or now with: finops accounts discover "
                f"{added.account_id}",
                err=True,
            )
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
            try:
                report = validate_new_account(
                    connection, ring, added.account_id, principal=principal, **_endpoints()
                )
            except BaseException:
                click.echo("validation did not finish; the account was not kept", err=True)
                raise
            _print_validation(report, err=True)
            if not report.ok:
                _fail("validation failed; the account was not kept")
    click.echo(added.account_id)


@accounts.command("list")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def accounts_list(output: str) -> None:
    """List accounts (never their credentials)."""
    from finops_pipeline.cli.onboarding import account_summaries

    with _database() as connection:
        rows = account_summaries(connection)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from finops_pipeline.db.request_budget import budget_statuses

    members: dict[str, int] = {}
    for row in rows:
        if row["payer_account_id"]:
            members[row["payer_account_id"]] = members.get(row["payer_account_id"], 0) + 1
    for row in rows:
        role = ""
        if row["management_account"]:
            role = f"  [payer of {members.get(row['id'], 0)} members]"
        elif row["payer_account_id"]:
            role = f"  [member of {row['payer_account_id'][:8]}]"
        click.echo(
            f"{row['id']}  {row['tenant_id']:<16} {row['provider']} {row['provider_account_id']}"
            f"  {row['credential_kind']:<14} {row['status']:<8} {row['name']}{role}"
            f"  ({row['paid_requests_this_month']} paid requests this month)"
        )
    with _database() as connection:
        statuses = budget_statuses(connection, sorted({row["tenant_id"] for row in rows}))
    for tenant, status in statuses.items():
        click.echo(f"tenant {tenant}: {status.summary}")


@accounts.command("discover")
@click.argument("account_id")
def accounts_discover(account_id: str) -> None:
    """List a management account's members now (paid) and add, re-enable or disable them."""
    import datetime as dt

    from finops_pipeline.db.accounts import get_account
    from finops_pipeline.errors import ConfigurationError
    from finops_pipeline.resources import default_resources
    from finops_pipeline.security.credentials import open_credentials
    from finops_pipeline.security.keys import load_key_ring
    from finops_pipeline.sync.organizations import discover_members

    ring = load_key_ring()
    lister = default_resources()["aws_cost_explorer"]
    with _database() as connection:
        if not get_account(connection, account_id).management_account:
            raise ConfigurationError(
                f"Account {account_id} is not a management account; register the payer with "
                "`finops accounts add --management-account`."
            )
        (outcome,) = discover_members(
            connection,
            [account_id],
            decrypt=lambda account: open_credentials(account, ring),
            ring=ring,
            lister=lister,  # type: ignore[arg-type]
            today=dt.datetime.now(dt.UTC).date(),
        )
    click.echo(outcome.line)
    if outcome.error is not None:
        sys.exit(1)


def _endpoints() -> dict[str, str | None]:
    from finops_pipeline.config import FinopsConfig

    config = FinopsConfig.from_env()
    return {"ce_endpoint_url": config.ce_endpoint_url, "sts_endpoint_url": config.sts_endpoint_url}


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
    from finops_pipeline.cli.onboarding import validate_account
    from finops_pipeline.providers.aws.roles import pipeline_principal_from_environment
    from finops_pipeline.providers.aws.validation import ValidationReport
    from finops_pipeline.security.keys import load_key_ring

    try:
        with _database() as connection:
            report = validate_account(
                connection,
                load_key_ring(),
                account_id,
                principal=pipeline_principal_from_environment(),
                **_endpoints(),
            )
    except Exception as error:
        if output == "json":
            # Scripts read stdout: they get the failed check, not silence.
            failed = ValidationReport(account_id=account_id)
            failed.add("error", False, _error_line(error))
            click.echo(json.dumps(failed.as_dict(), indent=2))
        raise
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
    from finops_pipeline.cli.onboarding import set_status

    with _database() as connection:
        set_status(connection, account_id, "disabled")
    click.echo(f"disabled {account_id}", err=True)


@accounts.command("enable")
@click.argument("account_id")
def accounts_enable(account_id: str) -> None:
    """Collect a disabled account again."""
    from finops_pipeline.cli.onboarding import set_status

    with _database() as connection:
        set_status(connection, account_id, "active")
    click.echo(f"enabled {account_id}", err=True)


@accounts.command("remove")
@click.argument("account_id")
@click.option("--purge", is_flag=True, help="Also delete its cost history and run outcomes.")
def accounts_remove(account_id: str, purge: bool) -> None:
    """Delete an account and its credentials; its cost history stays unless --purge."""
    from finops_pipeline.cli.onboarding import remove_account

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
def budget() -> None:
    """Monthly caps on paid provider requests per tenant (Cost Explorer requests)."""


@budget.command("set")
@click.option("--tenant", "tenant_id", required=True, callback=_tenant_id, help="The tenant.")
@click.option(
    "--monthly-requests",
    type=click.IntRange(0),
    default=None,
    help="Paid requests allowed per UTC calendar month.",
)
@click.option("--none", "remove", is_flag=True, help="Remove the tenant's budget.")
def budget_set(tenant_id: str, monthly_requests: int | None, remove: bool) -> None:
    """Cap a tenant's paid requests per month; a run that would pass it fails before calling
    the provider."""
    from finops_pipeline.db.request_budget import budget_statuses, set_budget

    if remove == (monthly_requests is not None):
        raise click.UsageError("Give exactly one of --monthly-requests N and --none.")
    with _database() as connection:
        set_budget(connection, tenant_id, None if remove else monthly_requests)
        status = budget_statuses(connection, [tenant_id]).get(tenant_id)
    click.echo(f"tenant {tenant_id}: {status.summary if status else 'no budget'}")


@budget.command("show")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def budget_show(output: str) -> None:
    """Each tenant's paid requests this month against its budget."""
    from finops_pipeline.db.request_budget import budget_statuses

    with _database() as connection:
        statuses = budget_statuses(connection)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    tenant: {
                        "month": status.month.isoformat(),
                        "unit": status.unit,
                        "used": status.used,
                        "limit": status.limit,
                    }
                    for tenant, status in statuses.items()
                },
                indent=2,
            )
        )
        return
    for tenant, status in statuses.items():
        click.echo(f"tenant {tenant}: {status.summary}")


@main.group()
def keys() -> None:
    """Encryption keys for stored credentials."""


@keys.command("generate")
@click.option("--local", is_flag=True, help="Write the embedded default's local key file instead.")
def keys_generate(local: bool) -> None:
    """Print a new random 256-bit key (64 hex characters) for ENCRYPTION_KEY."""
    from finops_pipeline.security.ciphertext import generate_key
    from finops_pipeline.security.keys import ensure_local_key

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
    from finops_pipeline.security.keys import load_key_ring
    from finops_pipeline.security.rotation import rotate_credentials

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
@click.option(
    "--tenant", "tenant_id", required=True, callback=_tenant_id, help="The tenant to export."
)
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
    default=DEMO_DEFAULT_DAYS,
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
    from finops_pipeline.cli.demo import (
        demo_window,
        ensure_instance_config,
        run_demo,
        summary_lines,
    )
    from finops_pipeline.cli.runner import open_instance
    from finops_pipeline.config import finops_home
    from finops_pipeline.db.urls import redact_url
    from finops_pipeline.resources import default_resources

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
    # As the user typed it (e.g. .venv/bin/finops), so it works without activating the venv.
    program = shlex.quote(sys.argv[0] if Path(sys.argv[0]).name == "finops" else "finops")
    tenant = report.tenants[0].tenant_id if report.tenants else "acme-retail"
    next_steps = [
        (f"{program} costs --tenant {tenant}", "a tenant's costs per service and day"),
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


@main.command()
@click.option(
    "--tenant",
    "tenant_id",
    required=True,
    callback=_tenant_id,
    help="The tenant whose costs to show.",
)
@click.option("--start", default=None, help="First day, YYYY-MM-DD (UTC). Default: --end - 6.")
@click.option(
    "--end", default=None, help="Last day, YYYY-MM-DD (UTC), inclusive. Default: yesterday."
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def costs(tenant_id: str, start: str | None, end: str | None, output: str) -> None:
    """A tenant's costs per service and day, from cost_data."""
    from finops_pipeline.db.reports import tenant_costs

    last = (
        _parse_day(end, "--end") if end else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    )
    first = _parse_day(start, "--start") if start else last - dt.timedelta(days=6)
    with _database() as connection:
        report = tenant_costs(connection, tenant_id, first, last)
    if output == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    _print_costs(report)


def _print_costs(report: Any) -> None:
    click.echo(
        f"Costs of tenant {report.tenant_id}, {report.start}..{report.end} "
        "(unblended, per day and service)"
    )
    if not report.rows:
        click.echo("  no costs recorded in this window")
        return
    click.echo(f"{'date':<11} {'service':<52} {'cost':>14}  currency")
    day = None
    for row in report.rows:
        shown = row.day.isoformat() if row.day != day else ""
        day = row.day
        click.echo(f"{shown:<11} {row.service:<52} {row.unblended_cost:>14,.2f}  {row.currency}")
    for currency, (unblended, net) in sorted(report.totals().items()):
        click.echo(
            f"{'total':<11} {'':<52} {unblended:>14,.2f}  {currency}  (net of credits and "
            f"refunds: {net:,.2f})"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
def ui(host: str, port: int) -> None:
    """Open the Dagster UI (dagster dev) on the local instance the CLI and the demo use.

    Ctrl-C stops it. On the embedded default the database server is started here, before
    Dagster's processes, and kept until they exit, so they only connect to it.
    """
    from finops_pipeline.cli.demo import ensure_instance_config, ui_environment, ui_workspace
    from finops_pipeline.config import finops_home
    from finops_pipeline.db.engine import create_finops_engine

    env = ui_environment()
    ensure_instance_config(Path(env["DAGSTER_HOME"]))
    workspace = ui_workspace(Path(env["DAGSTER_HOME"]))
    if not env.get("DATABASE_URL", "").strip():
        click.echo(f"Database: embedded PostgreSQL in {finops_home(env) / 'pgdata'}", err=True)
        # Starts (and migrates) the server; this process stays one of its users until it exits.
        create_finops_engine(environ=env).dispose()
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace)]
    command += ["-h", host, "-p", str(port)]
    click.echo(f"DAGSTER_HOME={env['DAGSTER_HOME']} {' '.join(command[1:])}", err=True)
    sys.exit(_run_in_foreground(command, env))


def _run_in_foreground(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` as a child and wait for it, passing termination signals on.

    Ctrl-C reaches the child from the terminal (same process group), so SIGINT is only
    waited out here; SIGTERM and SIGHUP, which may be sent to this process alone, are
    forwarded. Waiting (rather than exec) keeps this process alive, so the embedded server
    it holds is released, and stopped if no one else uses it, only after the child is gone.
    """
    import signal
    import subprocess

    # A shell that starts a background job ignores SIGINT in it, and the ignored state is
    # inherited; dagster dev maps SIGTERM onto its SIGINT handler, so it could then never stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: Any) -> None:
        if signum != signal.SIGINT:
            child.send_signal(signum)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in handled}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
