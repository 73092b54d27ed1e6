"""``finops budget``: monthly caps on each tenant's paid provider requests."""

from __future__ import annotations

import json

import click

from finops_pipeline.cli.common import OUTPUT_OPTION, database, tenant_id_option


@click.group("budget")
def budget() -> None:
    """Monthly caps on paid provider requests per tenant (Cost Explorer requests)."""


@budget.command("set")
@click.option("--tenant", "tenant_id", required=True, callback=tenant_id_option, help="The tenant.")
@click.option(
    "--monthly-requests",
    type=click.IntRange(0),
    default=None,
    help="Paid requests allowed per UTC calendar month.",
)
@click.option("--none", "remove", is_flag=True, help="Remove the tenant's budget.")
@click.option(
    "--unit",
    type=click.Choice(["request", "qpu"]),
    default="request",
    show_default=True,
    help="What the cap counts: Cost Explorer requests, or Azure query processing units.",
)
def budget_set(tenant_id: str, monthly_requests: int | None, remove: bool, unit: str) -> None:
    """Cap a tenant's paid requests per month; a run that would pass it fails before calling
    the provider."""
    from finops_pipeline.db.request_budget import budget_statuses, set_budget

    if remove == (monthly_requests is not None):
        raise click.UsageError("Give exactly one of --monthly-requests N and --none.")
    with database() as connection:
        set_budget(connection, tenant_id, None if remove else monthly_requests, unit=unit)
        status = budget_statuses(connection, [tenant_id], unit=unit).get(tenant_id)
    click.echo(f"tenant {tenant_id}: {status.summary if status else 'no budget'}")


@budget.command("show")
@OUTPUT_OPTION
def budget_show(output: str) -> None:
    """Each tenant's paid requests this month against its budget."""
    from finops_pipeline.db.request_budget import budget_statuses

    with database() as connection:
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
