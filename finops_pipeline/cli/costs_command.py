"""``finops costs``: a tenant's costs per service and day, read from cost_data."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from finops_pipeline.cli.common import OUTPUT_OPTION, database, parse_day, tenant_id_option


@click.command("costs")
@click.option(
    "--tenant",
    "tenant_id",
    required=True,
    callback=tenant_id_option,
    help="The tenant whose costs to show.",
)
@click.option("--start", default=None, help="First day, YYYY-MM-DD (UTC). Default: --end - 6.")
@click.option(
    "--end", default=None, help="Last day, YYYY-MM-DD (UTC), inclusive. Default: yesterday."
)
@OUTPUT_OPTION
def costs(tenant_id: str, start: str | None, end: str | None, output: str) -> None:
    """A tenant's costs per service and day, from cost_data."""
    from finops_pipeline.db.reports import tenant_costs

    last = parse_day(end, "--end") if end else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = parse_day(start, "--start") if start else last - dt.timedelta(days=6)
    with database() as connection:
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
