"""``finops recommendations``: a tenant's top savings recommendations, from the table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import click

from finops_pipeline.cli.common import database, tenant_id_option

DEFAULT_LIMIT = 10


@click.command("recommendations")
@click.option(
    "--tenant", "tenant_id", required=True, callback=tenant_id_option, help="The tenant to list."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="How many to list, largest savings first.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def recommendations(tenant_id: str, limit: int, output: str) -> None:
    """A tenant's open savings recommendations, largest estimated monthly savings first.

    They come from the providers (AWS rightsizing and Savings Plans), refreshed weekly by the
    cost_recommendations asset; resolved ones are not listed.
    """
    from finops_pipeline.db.recommendations import open_savings_by_currency, top_recommendations

    with database() as connection:
        top = top_recommendations(connection, tenant_id, limit=limit)
        totals = open_savings_by_currency(connection, tenant_id)
    if output == "json":
        click.echo(json.dumps(as_json(tenant_id, top, totals), indent=2))
        return
    for line in text_lines(tenant_id, top, totals):
        click.echo(line)


def as_json(
    tenant_id: str, top: Sequence[Any], totals: dict[str, tuple[int, Decimal]]
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "recommendations": [recommendation.as_dict() for recommendation in top],
        # Strings keep the exact decimals.
        "open_totals": [
            {"currency": currency, "count": count, "monthly_savings": str(total)}
            for currency, (count, total) in sorted(totals.items())
        ],
    }


def text_lines(
    tenant_id: str, top: Sequence[Any], totals: dict[str, tuple[int, Decimal]]
) -> list[str]:
    if not top:
        return [
            f"No open savings recommendations for tenant {tenant_id} yet; they are refreshed "
            "weekly (materialise cost_recommendations to refresh now)."
        ]
    summary = ", ".join(
        f"{count} worth {total:,.2f} {currency}/month"
        for currency, (count, total) in sorted(totals.items())
    )
    lines = [
        f"Top savings of tenant {tenant_id} (open: {summary})",
        f"{'savings/month':>14}  {'kind':<19} {'account':<20} {'resource':<28} recommendation",
    ]
    for item in top:
        lines.append(
            f"{item.monthly_savings:>10,.2f} {item.currency}  {item.kind:<19} "
            f"{_cut(item.account_name or item.account_id[:8], 20):<20} "
            f"{_cut(item.resource, 28):<28} {item.current} -> {item.recommended}"
        )
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
