"""Refreshing savings recommendations for a block of accounts: fetch, plan, store.

Dagster-free: the ``cost_recommendations`` asset hands it its account partitions and turns the
report into materialisation metadata. Each account is fetched and stored on its own, so one
account's provider error (access denied, throttled, a feature not enabled) never touches the
others: their refreshes are committed, and the failed account's stored set stays as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import psycopg

from finops_pipeline.db.accounts import CloudAccount, get_account
from finops_pipeline.db.recommendations import refresh_recommendations
from finops_pipeline.errors import FinopsError
from finops_pipeline.insights.recommendations import Recommendation
from finops_pipeline.providers.recommenders import RecommendationCollector, recommender_for
from finops_pipeline.security.credentials import Credentials

logger = logging.getLogger(__name__)

#: Open recommendations kept per account for the materialisation's preview.
PREVIEW_ROWS = 10


class PaidRequestMeter(Protocol):
    """Where a per-tenant request budget hooks in: asked before, told after each account.

    ``allow`` raises a ``FinopsError`` to skip an account (the failure is the account's
    alone); ``record`` receives the paid requests the account's refresh made.
    """

    def allow(self, account: CloudAccount) -> None: ...

    def record(self, account: CloudAccount, paid_requests: int) -> None: ...


@dataclass(frozen=True)
class AccountRefresh:
    """One account's successful refresh."""

    account_id: str
    tenant_id: str
    provider: str
    paid_requests: int
    counts: dict[str, int]
    open_savings: dict[str, Decimal]
    open_count: int
    notes: tuple[str, ...] = ()
    #: The account's largest open recommendations, largest first.
    largest: tuple[Recommendation, ...] = ()
    #: Every request the fetch made, billed or not.
    requests: int = 0
    #: What else the fetch used, by metadata name (GCP: the location query's BigQuery bytes).
    usage_metrics: dict[str, int] = field(default_factory=dict)
    #: Where the provider was asked, if it says (GCP: the zones and regions).
    asked_where: str | None = None


@dataclass(frozen=True)
class AccountRefreshFailure:
    """One account whose refresh failed; its stored recommendations are unchanged."""

    account_id: str
    tenant_id: str | None
    error_type: str
    message: str
    permanent: bool


@dataclass
class RefreshReport:
    """Every account of one run: refreshed or failed."""

    refreshed: list[AccountRefresh] = field(default_factory=list)
    failures: list[AccountRefreshFailure] = field(default_factory=list)
    #: Accounts of clouds with no recommendations collector yet: nothing fetched or changed.
    skipped: list[str] = field(default_factory=list)

    @property
    def paid_requests(self) -> int:
        return sum(account.paid_requests for account in self.refreshed)

    def paid_requests_by_account(self) -> dict[str, int]:
        return {account.account_id: account.paid_requests for account in self.refreshed}

    def requests_by_provider(self) -> dict[str, int]:
        """Every request (billed or not) per provider, for providers that count them."""
        totals: dict[str, int] = {}
        for account in self.refreshed:
            if account.requests:
                totals[account.provider] = totals.get(account.provider, 0) + account.requests
        return totals

    def asked_where_by_provider(self) -> dict[str, dict[str, str]]:
        """Per provider, where each account was asked, for providers that say."""
        by_provider: dict[str, dict[str, str]] = {}
        for account in self.refreshed:
            if account.asked_where is not None:
                by_provider.setdefault(account.provider, {})[account.account_id] = (
                    account.asked_where
                )
        return by_provider

    def usage_metrics(self) -> dict[str, int]:
        """Every account's usage metrics, summed by name."""
        totals: dict[str, int] = {}
        for account in self.refreshed:
            for name, value in account.usage_metrics.items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def totals(self) -> dict[str, int]:
        names = ("new", "updated", "unchanged", "reopened", "resolved")
        return {
            name: sum(account.counts.get(name, 0) for account in self.refreshed) for name in names
        }

    def open_savings(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for account in self.refreshed:
            for currency, amount in account.open_savings.items():
                totals[currency] = totals.get(currency, Decimal(0)) + amount
        return totals

    @property
    def open_count(self) -> int:
        return sum(account.open_count for account in self.refreshed)

    def largest(self, limit: int = PREVIEW_ROWS) -> list[tuple[str, Recommendation]]:
        """The run's largest open recommendations with their account id, largest first."""
        every = [(a.account_id, r) for a in self.refreshed for r in a.largest]
        every.sort(key=lambda item: (-item[1].estimated_monthly_savings, item[1].key))
        return every[:limit]


def refresh_accounts(
    account_ids: Sequence[str],
    *,
    connection: psycopg.Connection,
    decrypt: Callable[[CloudAccount], Credentials],
    collectors: Mapping[str, RecommendationCollector],
    run_id: str | None = None,
    meter: PaidRequestMeter | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> RefreshReport:
    """Refresh each account's recommendations from its provider, one account at a time."""
    report = RefreshReport()
    for account_id in account_ids:
        tenant_id: str | None = None
        try:
            account = get_account(connection, account_id)
            tenant_id = account.tenant_id
            if account.provider not in collectors:
                logger.info(
                    "Account %s: no recommendations collector for %s yet; skipped",
                    account_id,
                    account.provider,
                )
                report.skipped.append(account_id)
                continue
            collector = recommender_for(account.provider, collectors)
            if meter is not None:
                meter.allow(account)
            fetched = collector.fetch_recommendations(account, decrypt(account))
            if meter is not None:
                meter.record(account, fetched.paid_requests)
            plan = refresh_recommendations(
                connection,
                account,
                account.provider,
                fetched.records,
                seen_at=clock(),
                run_id=run_id,
            )
        except FinopsError as error:
            logger.warning("Recommendations of account %s failed: %s", account_id, error)
            report.failures.append(
                AccountRefreshFailure(
                    account_id, tenant_id, type(error).__name__, str(error), error.permanent
                )
            )
            continue
        open_states = [
            state
            for state in (*plan.new, *plan.updated, *plan.unchanged, *plan.reopened)
            if state.is_open
        ]
        savings: dict[str, Decimal] = {}
        for state in open_states:
            currency = state.recommendation.currency
            savings[currency] = (
                savings.get(currency, Decimal(0)) + state.recommendation.estimated_monthly_savings
            )
        report.refreshed.append(
            AccountRefresh(
                account_id=account.id,
                tenant_id=account.tenant_id,
                provider=account.provider,
                paid_requests=fetched.paid_requests,
                counts=plan.counts(),
                open_savings=savings,
                open_count=len(open_states),
                notes=tuple(fetched.notes),
                requests=fetched.requests,
                usage_metrics=dict(fetched.usage_metrics),
                asked_where=fetched.asked_where,
                largest=tuple(
                    sorted(
                        (state.recommendation for state in open_states),
                        key=lambda r: (-r.estimated_monthly_savings, r.key),
                    )[:PREVIEW_ROWS]
                ),
            )
        )
    return report
