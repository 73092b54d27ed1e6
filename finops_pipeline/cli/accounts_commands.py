"""``finops accounts``: onboard, validate and manage cloud accounts.

The logic lives in :mod:`finops_pipeline.cli.onboarding` and in each provider's package (its
``AccountOnboarding`` and ``validate`` probe, found through the registry). A provider's own
``accounts add`` options are listed in :data:`PROVIDER_ADD_OPTIONS`; its
``inputs_from_options`` reads them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from finops_pipeline.cli.common import OUTPUT_OPTION, database, error_line, fail, tenant_id_option
from finops_pipeline.providers import provider_names

if TYPE_CHECKING:
    from finops_pipeline.security.credentials import Secret

#: Options of ``accounts add`` that only one provider reads, by provider. Every value reaches
#: ``accounts add`` as a keyword; options of the other providers stay None (or False).
PROVIDER_ADD_OPTIONS: dict[str, tuple[Callable[[Any], Any], ...]] = {
    "aws": (
        click.option(
            "--access-key-id",
            default=None,
            help="AWS: access key id; the secret comes from FINOPS_AWS_SECRET_ACCESS_KEY or "
            "--secret-stdin, never argv.",
        ),
        click.option(
            "--role-arn", default=None, help="AWS: IAM role the pipeline assumes (external id)."
        ),
        click.option(
            "--pipeline-principal-arn",
            default=None,
            envvar="FINOPS_PIPELINE_AWS_PRINCIPAL_ARN",
            help="AWS: the pipeline's principal, for the printed trust policy.",
        ),
    ),
    "azure": (
        click.option(
            "--azure-tenant-id",
            default=None,
            help="Azure: the Entra tenant id of the app registration; its client secret comes "
            "from FINOPS_AZURE_CLIENT_SECRET or --secret-stdin, never argv.",
        ),
        click.option("--client-id", default=None, help="Azure: the app's application (client) id."),
        click.option(
            "--authority-host",
            default=None,
            help="Azure: the Entra authority (sovereign clouds, test doubles), e.g. "
            "https://login.microsoftonline.us; with --endpoint-url for Resource Manager.",
        ),
    ),
    "gcp": (
        click.option(
            "--billing-export-table",
            default=None,
            help="GCP: the billing export table, PROJECT.DATASET.TABLE; --account-number is "
            "the project to collect. The key comes from FINOPS_GCP_SERVICE_ACCOUNT_JSON or "
            "--key-stdin, never argv.",
        ),
        click.option("--location", default=None, help="GCP: the export dataset's location."),
        click.option(
            "--job-project", default=None, help="GCP: project the queries run in (the table's)."
        ),
        click.option("--api-endpoint", default=None, help="GCP: BigQuery API endpoint override."),
        click.option("--token-endpoint", default=None, help="GCP: OAuth token endpoint override."),
        click.option("--key-stdin", is_flag=True, help="GCP: read the JSON key file from stdin."),
    ),
}


def _with_provider_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for options in reversed(list(PROVIDER_ADD_OPTIONS.values())):
        for option in reversed(options):
            command = option(command)
    return command


def read_secret(env_name: str, from_stdin: bool) -> Secret | None:
    """A secret from stdin (``--secret-stdin``) or else from ``env_name``; None when unset.

    It joins the log redaction at once.
    """
    from finops_pipeline.security.credentials import Secret
    from finops_pipeline.security.redaction import register_secrets

    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise click.UsageError("--secret-stdin was given but stdin held no secret")
    else:
        value = os.environ.get(env_name, "").strip()
        if not value:
            return None
    register_secrets(value)
    return Secret(value)


def _note(message: str) -> None:
    click.echo(f"note: {message}", err=True)


def _endpoints() -> dict[str, str | None]:
    from finops_pipeline.config import FinopsConfig

    return FinopsConfig.from_env().endpoints()


def _print_validation(report: Any, *, err: bool = False) -> None:
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"  {mark} {check.name}: {check.detail}", err=err)
    api = f"{report.paid_api} " if report.paid_api else ""
    if report.paid_api or not report.quota_consumed:
        click.echo(
            f"  paid {api}requests: {report.paid_requests} (${report.paid_request_cost_usd})",
            err=err,
        )
    if report.quota_consumed is not None:
        click.echo(f"  {report.quota_unit} consumed: {report.quota_consumed}", err=err)


@click.group("accounts")
def accounts() -> None:
    """Onboard and manage cloud accounts (credentials are stored encrypted)."""


@accounts.command("add")
@click.option(
    "--tenant",
    "tenant_id",
    required=True,
    callback=tenant_id_option,
    help="The tenant the account belongs to (not blank, no surrounding spaces).",
)
@click.option("--name", required=True, help="A display name.")
@click.option(
    "--provider",
    default="aws",
    show_default=True,
    help=f"The cloud; registered: {', '.join(provider_names())}.",
)
@click.option(
    "--account-number",
    "--subscription-id",
    "account_number",
    required=True,
    help="The account's id at the provider (AWS: the 12-digit account number; Azure: the "
    "subscription id).",
)
@click.option("--secret-stdin", is_flag=True, help="Read the secret from stdin.")
@click.option("--endpoint-url", default=None, help="The provider's API endpoint override.")
@_with_provider_options
@click.option(
    "--validate",
    "validate_now",
    is_flag=True,
    help="Validate now (AWS: one paid request; Azure: one query's QPU); remove the account "
    "if it fails.",
)
@click.option(
    "--management-account",
    is_flag=True,
    help="AWS: an Organizations management (payer) account. Its members are discovered (Cost "
    "Explorer LINKED_ACCOUNT values, paid) and collected as accounts of their own with its "
    "credentials.",
)
def accounts_add(
    tenant_id: str,
    name: str,
    provider: str,
    account_number: str,
    secret_stdin: bool,
    endpoint_url: str | None,
    validate_now: bool,
    management_account: bool,
    **provider_options: Any,
) -> None:
    """Register an account. Prints only its new id on stdout; messages go to stderr."""
    from finops_pipeline.cli.onboarding import (
        add_account,
        provider_onboarding,
        validate_new_account,
    )
    from finops_pipeline.security.keys import load_key_ring

    onboarding = provider_onboarding(provider)
    if management_account and provider != "aws":
        raise click.UsageError("--management-account is for AWS Organizations payers only.")
    options = {
        **provider_options,
        "secret_stdin": secret_stdin,
        "account_number": account_number,
        "endpoint_url": endpoint_url,
    }
    inputs = onboarding.inputs_from_options(options, read_secret, _note)
    ring = load_key_ring()
    with database() as connection:
        added = add_account(
            connection,
            ring,
            tenant_id=tenant_id,
            name=name,
            provider=provider,
            provider_account_id=account_number,
            endpoint_url=endpoint_url,
            management_account=management_account,
            **inputs,
        )
        click.echo(f"registered {added.credential_kind} account {added.account_id}", err=True)
        if management_account:
            click.echo(
                "management account: the aws_organization_members_sensor lists its members "
                f"within a day, or now: finops accounts discover {added.account_id}",
                err=True,
            )
        text = onboarding.onboarding_text(added, options)
        if text:
            click.echo(text, err=True)
        if validate_now:
            try:
                report = validate_new_account(
                    connection, ring, added.account_id, endpoints=_endpoints()
                )
            except BaseException:
                click.echo("validation did not finish; the account was not kept", err=True)
                raise
            _print_validation(report, err=True)
            if not report.ok:
                fail("validation failed; the account was not kept")
    click.echo(added.account_id)


@accounts.command("list")
@OUTPUT_OPTION
def accounts_list(output: str) -> None:
    """List accounts (never their credentials)."""
    from finops_pipeline.cli.onboarding import account_summaries

    with database() as connection:
        rows = account_summaries(connection)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from finops_pipeline.db.request_budget import UNIT_QPU, UNIT_REQUEST, budget_statuses

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
            f"  ({row['paid_requests_this_month']} paid requests"
            + (f", {row['qpu_this_month']} QPU" if row["qpu_this_month"] else "")
            + " this month)"
        )
    tenants = sorted({row["tenant_id"] for row in rows})
    with database() as connection:
        statuses = [
            status
            for unit in (UNIT_REQUEST, UNIT_QPU)
            for status in budget_statuses(connection, tenants, unit=unit).values()
        ]
    for status in sorted(statuses, key=lambda status: status.tenant_id):
        click.echo(f"tenant {status.tenant_id}: {status.summary}")


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
    with database() as connection:
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


@accounts.command("validate")
@click.argument("account_id")
@OUTPUT_OPTION
def accounts_validate(account_id: str, output: str) -> None:
    """Prove the credentials work: identity, role safety, and a one-day paid probe."""
    from finops_pipeline.cli.onboarding import validate_account
    from finops_pipeline.providers.base import ValidationReport
    from finops_pipeline.security.keys import load_key_ring

    try:
        with database() as connection:
            report = validate_account(
                connection, load_key_ring(), account_id, endpoints=_endpoints()
            )
    except Exception as error:
        if output == "json":
            # Scripts read stdout: they get the failed check, not silence.
            failed = ValidationReport(account_id=account_id)
            failed.add("error", False, error_line(error))
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

    with database() as connection:
        set_status(connection, account_id, "disabled")
    click.echo(f"disabled {account_id}", err=True)


@accounts.command("enable")
@click.argument("account_id")
def accounts_enable(account_id: str) -> None:
    """Collect a disabled account again."""
    from finops_pipeline.cli.onboarding import set_status

    with database() as connection:
        set_status(connection, account_id, "active")
    click.echo(f"enabled {account_id}", err=True)


@accounts.command("remove")
@click.argument("account_id")
@click.option("--purge", is_flag=True, help="Also delete its cost history and run outcomes.")
def accounts_remove(account_id: str, purge: bool) -> None:
    """Delete an account and its credentials; its cost history stays unless --purge."""
    from finops_pipeline.cli.onboarding import remove_account

    with database() as connection:
        removed = remove_account(connection, account_id, purge=purge)
    detail = (
        f", purged {removed.cost_rows_deleted} cost rows and {removed.sync_runs_deleted} run "
        "outcomes"
        if purge
        else "; its cost history is kept"
    )
    click.echo(f"removed {account_id}{detail}", err=True)
