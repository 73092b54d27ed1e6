"""Reading costs back: one tenant's through the tenant-scoped (Row-Level Security) path, and
totals over chosen accounts (``finops demo``'s summary)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from finops_pipeline.db.tenants import tenant_transaction
from finops_pipeline.errors import ConfigurationError


@dataclass(frozen=True)
class ServiceDayCost:
    """One tenant's cost for one service on one day, summed over its accounts and usage types."""

    day: dt.date
    service: str
    currency: str
    unblended_cost: Decimal
    net_unblended_cost: Decimal
    amortized_cost: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "service": self.service,
            "currency": self.currency,
            # Strings keep the exact decimals; JSON numbers would be read back as floats.
            "unblended_cost": str(self.unblended_cost),
            "net_unblended_cost": str(self.net_unblended_cost),
            "amortized_cost": str(self.amortized_cost),
        }


@dataclass(frozen=True)
class TenantCosts:
    """A tenant's costs per service and day over a window, with totals per currency."""

    tenant_id: str
    start: dt.date
    end: dt.date
    rows: list[ServiceDayCost]

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Unblended and net unblended cost per currency over the whole window."""
        totals: dict[str, tuple[Decimal, Decimal]] = {}
        for row in self.rows:
            unblended, net = totals.get(row.currency, (Decimal(0), Decimal(0)))
            totals[row.currency] = (unblended + row.unblended_cost, net + row.net_unblended_cost)
        return totals

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": [row.as_dict() for row in self.rows],
            "totals": [
                {"currency": currency, "unblended_cost": str(u), "net_unblended_cost": str(n)}
                for currency, (u, n) in sorted(self.totals().items())
            ],
        }


def tenant_costs(
    connection: psycopg.Connection, tenant_id: str, start: dt.date, end: dt.date
) -> TenantCosts:
    """``tenant_id``'s costs per service and day from ``start`` to ``end`` inclusive.

    Runs in :func:`tenant_transaction`, so a ``finops_reporting`` login sees exactly what a
    dashboard of that tenant would; the explicit ``tenant_id`` filter makes the result the same
    for a role that bypasses Row-Level Security (the pipeline's, a superuser).

    Args:
        connection: An autocommit connection.
        tenant_id: The tenant.
        start: First day (UTC).
        end: Last day (UTC), inclusive.

    Raises:
        ConfigurationError: ``end`` is before ``start``, or nothing is recorded for the tenant.
    """
    if end < start:
        raise ConfigurationError(f"--end {end} is before --start {start}.")
    with tenant_transaction(connection, tenant_id):
        known = connection.execute(
            "SELECT EXISTS (SELECT 1 FROM cloud_accounts WHERE tenant_id = %(t)s) "
            "OR EXISTS (SELECT 1 FROM cost_data WHERE tenant_id = %(t)s)",
            {"t": tenant_id},
        ).fetchone()
        if not known or not known[0]:
            raise ConfigurationError(
                f"No accounts or costs are recorded for tenant {tenant_id!r}; "
                "`finops accounts list` shows the tenants."
            )
        rows = connection.execute(
            "SELECT date, service, currency, sum(unblended_cost), sum(net_unblended_cost), "
            "sum(amortized_cost) FROM cost_data "
            "WHERE tenant_id = %s AND date BETWEEN %s AND %s "
            "GROUP BY date, service, currency "
            "ORDER BY date, sum(unblended_cost) DESC, service, currency",
            (tenant_id, start, end),
        ).fetchall()
    return TenantCosts(
        tenant_id=tenant_id,
        start=start,
        end=end,
        rows=[ServiceDayCost(*row) for row in rows],
    )


# --- totals over a set of accounts (``finops demo``'s summary) ------------------------------


@dataclass(frozen=True)
class TenantSummary:
    """What ``cost_data`` holds for some of one tenant's accounts over a window."""

    tenant_id: str
    rows: int
    unblended_cost: Decimal
    currency: str
    top_services: list[tuple[str, Decimal]]


def count_cost_rows(connection: psycopg.Connection, account_ids: Sequence[str]) -> int:
    """Rows ``cost_data`` holds for these accounts."""
    row = connection.execute(
        "SELECT count(*) FROM cost_data WHERE cloud_account_id::text = ANY(%s)",
        (list(account_ids),),
    ).fetchone()
    return int(row[0]) if row else 0


def tenant_summaries(
    connection: psycopg.Connection,
    account_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    top: int,
) -> list[TenantSummary]:
    """Rows, cost and the ``top`` costliest services per tenant (and currency) of these accounts
    over ``start``..``end``."""
    window = (list(account_ids), start, end)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT tenant_id, currency, count(*), sum(unblended_cost)
            FROM cost_data
            WHERE cloud_account_id::text = ANY(%s) AND date BETWEEN %s AND %s
            GROUP BY tenant_id, currency ORDER BY tenant_id, currency
            """,
            window,
        )
        totals = cursor.fetchall()
        cursor.execute(
            """
            SELECT tenant_id, currency, service, cost FROM (
                SELECT tenant_id, currency, service, sum(unblended_cost) AS cost,
                       row_number() OVER (PARTITION BY tenant_id, currency
                                          ORDER BY sum(unblended_cost) DESC) AS rank
                FROM cost_data
                WHERE cloud_account_id::text = ANY(%s) AND date BETWEEN %s AND %s
                GROUP BY tenant_id, currency, service
            ) ranked WHERE rank <= %s ORDER BY tenant_id, currency, rank
            """,
            (*window, top),
        )
        # Per currency: a tenant billed in two currencies gets each total's own services.
        services: dict[tuple[str, str], list[tuple[str, Decimal]]] = {}
        for tenant_id, currency, service, cost in cursor.fetchall():
            services.setdefault((tenant_id, currency), []).append((service, Decimal(cost)))
    return [
        TenantSummary(
            tenant_id=tenant_id,
            rows=int(rows),
            unblended_cost=Decimal(cost),
            currency=currency,
            top_services=services.get((tenant_id, currency), []),
        )
        for tenant_id, currency, rows, cost in totals
    ]
