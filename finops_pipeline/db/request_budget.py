"""Paid provider requests per tenant and month, and the optional monthly budget that caps them.

Every process that pays a provider (a run's collection, the account sensor's member discovery)
adds its requests to ``paid_request_usage`` in Postgres, so the count holds across runs,
processes and retries. Before calling the provider it reserves the fewest requests it will
make; with a budget set, the reservation locks the tenant's budget row, so two runs cannot
both take the last requests. Units are provider-neutral: ``request`` for Cost Explorer (each
request and page costs $0.01), ``qpu`` for Azure's query processing units.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg

from finops_pipeline.errors import ConfigurationError, RequestBudgetExceededError
from finops_pipeline.sync.windows import first_of_month

UNIT_REQUEST = "request"
UNIT_QPU = "qpu"


def _unit_option(unit: str) -> str:
    """``finops budget set``'s option naming ``unit`` (none for the default)."""
    return "" if unit == UNIT_REQUEST else f" --unit {unit}"


@dataclass(frozen=True)
class BudgetStatus:
    """A tenant's paid requests this month against its budget (None: no budget)."""

    tenant_id: str
    unit: str
    month: dt.date
    used: int
    limit: int | None

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def summary(self) -> str:
        """ "12 of 100 requests in 2026-12" or "12 QPU in 2026-12 (no budget)"."""
        month = self.month.strftime("%Y-%m")
        if self.limit is None:
            return f"{self.used} {unit_label(self.unit)} in {month} (no budget)"
        return f"{self.used} of {self.limit} {unit_label(self.unit)} in {month}"


def unit_label(unit: str) -> str:
    """How messages count ``unit``: "requests", "QPU"."""
    return "QPU" if unit == UNIT_QPU else f"{unit}s"


def current_month(today: dt.date | None = None) -> dt.date:
    """The 1st of the UTC month requests made now are counted in."""
    return first_of_month(today or dt.datetime.now(dt.UTC).date())


def set_budget(
    connection: psycopg.Connection,
    tenant_id: str,
    monthly_limit: int | None,
    *,
    unit: str = UNIT_REQUEST,
) -> None:
    """Set (or, with None, remove) a tenant's monthly cap on paid requests."""
    if monthly_limit is not None and monthly_limit < 0:
        raise ConfigurationError("A monthly request budget cannot be negative.")
    with connection.transaction():
        if monthly_limit is None:
            connection.execute(
                "DELETE FROM tenant_request_budgets WHERE tenant_id = %s AND unit = %s",
                (tenant_id, unit),
            )
            return
        connection.execute(
            """
            INSERT INTO tenant_request_budgets (tenant_id, unit, monthly_limit)
            VALUES (%s, %s, %s)
            ON CONFLICT (tenant_id, unit) DO UPDATE
                SET monthly_limit = EXCLUDED.monthly_limit, updated_at = now()
            """,
            (tenant_id, unit, monthly_limit),
        )


def _used(connection: psycopg.Connection, tenant_id: str, unit: str, month: dt.date) -> int:
    row = connection.execute(
        "SELECT COALESCE(sum(requests), 0) FROM paid_request_usage "
        "WHERE tenant_id = %s AND unit = %s AND month = %s",
        (tenant_id, unit, month),
    ).fetchone()
    return int(row[0]) if row else 0


def _add(
    connection: psycopg.Connection,
    tenant_id: str,
    month: dt.date,
    unit: str,
    requests: Iterable[tuple[str, str, int]],
) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO paid_request_usage (tenant_id, month, cloud_account_id, provider, unit,
                                            requests)
            VALUES (%(tenant)s, %(month)s, %(account)s::uuid, %(provider)s, %(unit)s,
                    GREATEST(%(count)s, 0))
            ON CONFLICT (tenant_id, month, cloud_account_id, unit) DO UPDATE
                SET requests = GREATEST(paid_request_usage.requests + %(count)s, 0),
                    updated_at = now()
            """,
            [
                {
                    "tenant": tenant_id,
                    "month": month,
                    "account": account,
                    "provider": provider,
                    "unit": unit,
                    "count": count,
                }
                for account, provider, count in requests
                if count
            ],
        )


def reserve_requests(
    connection: psycopg.Connection,
    tenant_id: str,
    planned: Mapping[tuple[str, str], int],
    *,
    unit: str = UNIT_REQUEST,
    month: dt.date | None = None,
    purpose: str = "this run",
) -> BudgetStatus:
    """Count ``planned`` requests ((account id, provider) -> count) before making them.

    Raises:
        RequestBudgetExceededError: With a budget, the month's requests plus ``planned`` would
            exceed it; nothing was counted, and the caller must not call the provider.
    """
    month = month or current_month()
    needed = sum(planned.values())
    with connection.transaction():
        budget = connection.execute(
            "SELECT monthly_limit FROM tenant_request_budgets "
            "WHERE tenant_id = %s AND unit = %s FOR UPDATE",
            (tenant_id, unit),
        ).fetchone()
        used = _used(connection, tenant_id, unit, month)
        limit = int(budget[0]) if budget else None
        if limit is not None and used + needed > limit:
            counted = "paid requests" if unit == UNIT_REQUEST else unit_label(unit)
            raise RequestBudgetExceededError(
                f"Tenant {tenant_id!r} has used {used} of its {limit} {counted} for "
                f"{month:%Y-%m}, and {purpose} needs at least {needed} more; nothing was "
                "requested from the provider and no data changed. Raise the budget with "
                f"`finops budget set --tenant {tenant_id}{_unit_option(unit)} --monthly-requests "
                "N`, or wait for "
                "next month."
            )
        _add(
            connection,
            tenant_id,
            month,
            unit,
            [(account, provider, count) for (account, provider), count in planned.items()],
        )
    return BudgetStatus(tenant_id, unit, month, used + needed, limit)


def record_requests(
    connection: psycopg.Connection,
    tenant_id: str,
    cloud_account_id: str,
    provider: str,
    count: int,
    *,
    unit: str = UNIT_REQUEST,
    month: dt.date | None = None,
) -> None:
    """Add requests already made (or, negative, give back an unused reservation)."""
    if not count:
        return
    with connection.transaction():
        _add(
            connection,
            tenant_id,
            month or current_month(),
            unit,
            [(cloud_account_id, provider, count)],
        )


def budget_statuses(
    connection: psycopg.Connection,
    tenant_ids: Iterable[str] | None = None,
    *,
    unit: str = UNIT_REQUEST,
    month: dt.date | None = None,
) -> dict[str, BudgetStatus]:
    """Each tenant's status this month: tenants with a budget or with requests counted."""
    month = month or current_month()
    rows = connection.execute(
        """
        WITH tenants AS (
            SELECT tenant_id FROM tenant_request_budgets WHERE unit = %(unit)s
            UNION
            SELECT tenant_id FROM paid_request_usage WHERE unit = %(unit)s AND month = %(month)s
        )
        SELECT t.tenant_id,
               (SELECT COALESCE(sum(u.requests), 0) FROM paid_request_usage AS u
                WHERE u.tenant_id = t.tenant_id AND u.unit = %(unit)s AND u.month = %(month)s),
               (SELECT b.monthly_limit FROM tenant_request_budgets AS b
                WHERE b.tenant_id = t.tenant_id AND b.unit = %(unit)s)
        FROM tenants AS t
        WHERE %(all)s OR t.tenant_id = ANY(%(ids)s)
        ORDER BY 1
        """,
        {
            "unit": unit,
            "month": month,
            "all": tenant_ids is None,
            "ids": list(tenant_ids or ()),
        },
    ).fetchall()
    return {
        tenant: BudgetStatus(tenant, unit, month, int(used), None if limit is None else int(limit))
        for tenant, used, limit in rows
    }


def account_requests(
    connection: psycopg.Connection, *, unit: str = UNIT_REQUEST, month: dt.date | None = None
) -> dict[str, int]:
    """Paid requests per account this month (account id -> count)."""
    rows = connection.execute(
        "SELECT cloud_account_id::text, sum(requests) FROM paid_request_usage "
        "WHERE unit = %s AND month = %s GROUP BY 1",
        (unit, month or current_month()),
    ).fetchall()
    return {account: int(count) for account, count in rows}
