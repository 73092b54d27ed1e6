"""``finops export``: cost data in open formats."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from finops_pipeline.cli.common import database, parse_day, tenant_id_option


@click.group("export")
def export() -> None:
    """Export cost data in open formats."""


@export.command("focus")
@click.option(
    "--tenant", "tenant_id", required=True, callback=tenant_id_option, help="The tenant to export."
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
def export_focus(
    tenant_id: str, start: str, end: str, export_format: str, output: str | None
) -> None:
    """Write one tenant's costs as FinOps FOCUS 1.2 rows (the cost_data_focus view).

    Reads through the reporting role's row-level security, so the file can only hold that
    tenant's rows.
    """
    from finops_pipeline.db.focus_export import export_focus as write_focus_rows

    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if export_format == "parquet" and not output:
        raise click.UsageError("--format parquet needs --output FILE")
    with database() as connection:
        rows = write_focus_rows(
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
