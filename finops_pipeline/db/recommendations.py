"""Reading and refreshing ``cost_recommendations``.

A refresh of one (account, provider) reads the stored set, plans the change with
:func:`~finops_pipeline.insights.recommendations.plan_refresh` and writes it, all in one
transaction under an advisory lock on the account, so two refreshes of one account never
interleave and a failed write leaves the stored set as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.db.tenants import tenant_transaction
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.insights.recommendations import (
    Recommendation,
    RefreshPlan,
    StoredRecommendation,
    plan_refresh,
)

_COLUMNS = (
    "tenant_id",
    "cloud_account_id",
    "provider",
    "source",
    "resource",
    "kind",
    "current",
    "recommended",
    "monthly_savings",
    "currency",
    "raw",
    "first_seen",
    "last_seen",
    "resolved_at",
    "run_id",
)
_UPSERT = f"""
    INSERT INTO cost_recommendations ({", ".join(_COLUMNS)})
    VALUES ({", ".join(["%s"] * len(_COLUMNS))})
    ON CONFLICT (tenant_id, cloud_account_id, provider, source, resource) DO UPDATE SET
        kind = EXCLUDED.kind,
        current = EXCLUDED.current,
        recommended = EXCLUDED.recommended,
        monthly_savings = EXCLUDED.monthly_savings,
        currency = EXCLUDED.currency,
        raw = EXCLUDED.raw,
        first_seen = EXCLUDED.first_seen,
        last_seen = EXCLUDED.last_seen,
        resolved_at = EXCLUDED.resolved_at,
        run_id = EXCLUDED.run_id
"""


def stored_recommendations(
    connection: psycopg.Connection, account: CloudAccount, provider: str
) -> list[StoredRecommendation]:
    """Every stored recommendation of ``account`` from ``provider``, open or resolved."""
    rows = connection.execute(
        """
        SELECT source, kind, resource, current, recommended, monthly_savings, currency, raw,
               first_seen, last_seen, resolved_at
        FROM cost_recommendations
        WHERE tenant_id = %s AND cloud_account_id = %s AND provider = %s
        ORDER BY source, resource
        """,
        (account.tenant_id, account.id, provider),
    ).fetchall()
    return [
        StoredRecommendation(
            recommendation=Recommendation(
                provider=provider,
                account=account.provider_account_id,
                source=source,
                kind=kind,
                resource_id=resource,
                current=current,
                recommended=recommended,
                estimated_monthly_savings=Decimal(savings),
                currency=currency,
                raw=raw,
            ),
            first_seen=first_seen,
            last_seen=last_seen,
            resolved_at=resolved_at,
        )
        for (
            source,
            kind,
            resource,
            current,
            recommended,
            savings,
            currency,
            raw,
            first_seen,
            last_seen,
            resolved_at,
        ) in rows
    ]


def refresh_recommendations(
    connection: psycopg.Connection,
    account: CloudAccount,
    provider: str,
    fresh: Iterable[Recommendation],
    *,
    seen_at: dt.datetime,
    run_id: str | None = None,
) -> RefreshPlan:
    """Replace ``provider``'s current set for ``account`` with ``fresh``, in one transaction.

    New and changed recommendations are written, unchanged ones get their last-seen time,
    ones missing from ``fresh`` are marked resolved (never deleted).

    Args:
        connection: An autocommit connection of the pipeline role.
        account: The account refreshed.
        provider: The provider whose set ``fresh`` is, complete.
        fresh: The provider's recommendations for the account.
        seen_at: When they were fetched (timezone-aware).
        run_id: The Dagster run writing them.

    Returns:
        What changed; see :class:`~finops_pipeline.insights.recommendations.RefreshPlan`.
    """
    fresh = list(fresh)
    with connection.transaction():
        # One refresh per account at a time: the plan is made from what this one read.
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"cost_recommendations:{account.id}",),
        )
        stored = stored_recommendations(connection, account, provider)
        plan = plan_refresh(
            stored, fresh, provider=provider, account=account.provider_account_id, seen_at=seen_at
        )
        with connection.cursor() as cursor:
            cursor.executemany(_UPSERT, [_row(account, state, run_id) for state in plan.to_store])
    return plan


def _row(account: CloudAccount, state: StoredRecommendation, run_id: str | None) -> tuple:
    recommendation = state.recommendation
    return (
        account.tenant_id,
        account.id,
        recommendation.provider,
        recommendation.source,
        recommendation.resource_id,
        recommendation.kind,
        recommendation.current,
        recommendation.recommended,
        recommendation.estimated_monthly_savings,
        recommendation.currency,
        # The payload's own decimals and strings, as the provider sent them.
        Jsonb(recommendation.raw, dumps=lambda value: json.dumps(value, default=str)),
        state.first_seen,
        state.last_seen,
        state.resolved_at,
        run_id,
    )


@dataclass(frozen=True)
class OpenRecommendation:
    """An open recommendation as the CLI and dashboards list it."""

    account_id: str
    account_name: str | None
    provider: str
    source: str
    kind: str
    resource: str
    current: str
    recommended: str
    monthly_savings: Decimal
    currency: str
    first_seen: dt.datetime
    last_seen: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "account_name": self.account_name,
            "provider": self.provider,
            "source": self.source,
            "kind": self.kind,
            "resource": self.resource,
            "current": self.current,
            "recommended": self.recommended,
            # A string keeps the exact decimal; a JSON number is read back as a float.
            "monthly_savings": str(self.monthly_savings),
            "currency": self.currency,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


def top_recommendations(
    connection: psycopg.Connection, tenant_id: str, *, limit: int = 20
) -> list[OpenRecommendation]:
    """``tenant_id``'s open recommendations, largest monthly savings first.

    Read in :func:`tenant_transaction`, so a reporting login sees exactly its tenant's rows.

    Raises:
        ConfigurationError: nothing at all is recorded for the tenant.
    """
    if limit < 1:
        raise ConfigurationError("--limit must be at least 1.")
    with tenant_transaction(connection, tenant_id):
        known = connection.execute(
            "SELECT EXISTS (SELECT 1 FROM cloud_accounts WHERE tenant_id = %(t)s) "
            "OR EXISTS (SELECT 1 FROM cost_recommendations WHERE tenant_id = %(t)s)",
            {"t": tenant_id},
        ).fetchone()
        if not known or not known[0]:
            raise ConfigurationError(
                f"No accounts or recommendations are recorded for tenant {tenant_id!r}; "
                "`finops accounts list` shows the tenants."
            )
        rows = connection.execute(
            """
            SELECT r.cloud_account_id::text, a.name, r.provider, r.source, r.kind, r.resource,
                   r.current, r.recommended, r.monthly_savings, r.currency, r.first_seen,
                   r.last_seen
            FROM cost_recommendations AS r
            LEFT JOIN cloud_accounts AS a
                ON a.id = r.cloud_account_id AND a.tenant_id = r.tenant_id
            WHERE r.tenant_id = %s AND r.resolved_at IS NULL
            ORDER BY r.monthly_savings DESC, r.provider, r.source, r.resource
            LIMIT %s
            """,
            (tenant_id, limit),
        ).fetchall()
    return [OpenRecommendation(*row) for row in rows]


def open_savings_by_currency(
    connection: psycopg.Connection, tenant_id: str
) -> dict[str, tuple[int, Decimal]]:
    """Count and total monthly savings of ``tenant_id``'s open recommendations per currency."""
    with tenant_transaction(connection, tenant_id):
        rows = connection.execute(
            "SELECT currency, count(*), sum(monthly_savings) FROM cost_recommendations "
            "WHERE tenant_id = %s AND resolved_at IS NULL GROUP BY currency ORDER BY currency",
            (tenant_id,),
        ).fetchall()
    return {currency: (int(count), Decimal(total)) for currency, count, total in rows}
