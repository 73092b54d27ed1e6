"""A run's paid requests against its tenants' monthly budgets: reserved before any provider
call, settled to what each account really spent after it.

Collectors say what a run will cost at least through an optional
``planned_paid_requests(account, windows)`` and the unit they count in (``paid_request_unit``,
``request`` unless they say otherwise; Azure counts ``qpu``, settled to the QPU its queries
consumed). A tenant whose budget cannot
cover the whole run's minimum gets none of it: every one of its accounts in the run fails
before the provider is called, with the budget's message recorded as the account's outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg

from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.db.request_budget import (
    UNIT_QPU,
    UNIT_REQUEST,
    BudgetStatus,
    budget_statuses,
    current_month,
    record_requests,
    reserve_requests,
)
from finops_pipeline.errors import FinopsError, RequestBudgetExceededError
from finops_pipeline.providers.base import CostCollector

logger = logging.getLogger(__name__)


def paid_unit(collector: CostCollector | None) -> str:
    """The unit a collector's paid calls are counted in."""
    return str(getattr(collector, "paid_request_unit", UNIT_REQUEST))


def planned_requests(collector: CostCollector | None, account: CloudAccount, windows: int) -> int:
    """The fewest paid units the collector spends on ``windows`` windows (0 if it cannot say)."""
    plan = getattr(collector, "planned_paid_requests", None)
    return int(plan(account, windows)) if plan is not None else 0


def spent_units(unit: str, paid_requests: int, quota_consumed: Decimal) -> int:
    """What one window cost in ``unit``: QPU consumed (rounded up; a query costs at least 1),
    else paid requests. ``paid_requests`` stays Cost Explorer's in metadata either way."""
    if unit == UNIT_QPU:
        return math.ceil(quota_consumed)
    return paid_requests


@dataclass
class RunBudget:
    """The reservations of one run, and the refusals."""

    month: dt.date
    planned: dict[str, int] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    refused: dict[str, RequestBudgetExceededError] = field(default_factory=dict)

    def settle(
        self,
        connection: psycopg.Connection,
        account: CloudAccount,
        *,
        windows_done: Sequence[int],
        windows_total: int,
    ) -> None:
        """Replace the reservation of each finished window with what it really cost.

        Windows that failed keep their reservation: pages paid before a failure are not known.
        """
        planned = self.planned.get(account.id, 0)
        if not windows_total:
            return
        per_window = planned / windows_total
        delta = round(sum(windows_done) - per_window * len(windows_done))
        try:
            record_requests(
                connection,
                account.tenant_id,
                account.id,
                account.provider,
                delta,
                unit=self.units.get(account.id, UNIT_REQUEST),
                month=self.month,
            )
        except psycopg.Error as error:
            logger.warning("Could not record paid requests of %s: %s", account.id, error)

    def statuses(self, connection: psycopg.Connection, tenants: Sequence[str]) -> dict[str, str]:
        """Tenant -> "used of limit" this month, for the run's metadata."""
        try:
            found: dict[str, BudgetStatus] = budget_statuses(connection, tenants, month=self.month)
        except psycopg.Error:
            return {}
        return {tenant: status.summary for tenant, status in found.items()}


def reserve_run(
    connection: psycopg.Connection,
    accounts: Sequence[CloudAccount],
    windows: Mapping[str, int],
    collectors: Mapping[str, CostCollector],
    *,
    month: dt.date | None = None,
) -> RunBudget:
    """Reserve every active account's minimum paid requests, tenant by tenant, all or nothing."""
    budget = RunBudget(month=month or current_month())
    by_tenant: dict[tuple[str, str], dict[tuple[str, str], int]] = defaultdict(dict)
    for account in accounts:
        if account.status != "active":
            continue
        collector = collectors.get(account.provider)
        unit = paid_unit(collector)
        count = planned_requests(collector, account, windows.get(account.id, 0))
        budget.planned[account.id] = count
        budget.units[account.id] = unit
        by_tenant[(account.tenant_id, unit)][(account.id, account.provider)] = count
    for (tenant, unit), planned in by_tenant.items():
        try:
            reserve_requests(connection, tenant, planned, unit=unit, month=budget.month)
        except RequestBudgetExceededError as error:
            logger.error("%s", error)
            for account_id, _ in planned:
                budget.refused[account_id] = error
                budget.planned[account_id] = 0
        except (FinopsError, psycopg.Error) as error:
            # Counting must not stop collection when the budget tables cannot be written.
            logger.warning("Could not reserve paid requests for %s: %s", tenant, error)
            for account_id, _ in planned:
                budget.planned[account_id] = 0
    return budget


class BudgetMeter:
    """The request budget for refreshes that call the provider account by account
    (``sync.recommendation_refresh.PaidRequestMeter``): the account's planned paid units are
    reserved before it, refused when the tenant's budget is spent, and settled to the real
    count. The plan and unit are the collector's (``planned_recommendation_requests(account)``,
    ``paid_request_unit``), else one paid ``request``; a plan of 0 (Azure Advisor: no QPU)
    reserves nothing, so a spent budget never blocks a free refresh."""

    def __init__(
        self,
        connection: psycopg.Connection,
        *,
        purpose: str,
        collectors: Mapping[str, object] | None = None,
    ) -> None:
        self._connection = connection
        self._purpose = purpose
        self._month = current_month()
        self._collectors = dict(collectors or {})

    def _plan(self, account: CloudAccount) -> tuple[str, int]:
        collector = self._collectors.get(account.provider)
        plan = getattr(collector, "planned_recommendation_requests", None)
        unit = str(getattr(collector, "paid_request_unit", UNIT_REQUEST))
        return unit, (int(plan(account)) if plan is not None else 1)

    def allow(self, account: CloudAccount) -> None:
        """Reserve the account's planned paid units, or raise RequestBudgetExceededError."""
        unit, planned = self._plan(account)
        if not planned:
            return
        reserve_requests(
            self._connection,
            account.tenant_id,
            {(account.id, account.provider): planned},
            unit=unit,
            month=self._month,
            purpose=f"{self._purpose} of account {account.id}",
        )

    def record(self, account: CloudAccount, paid_requests: int) -> None:
        """Replace the reservation with the paid units the account really spent."""
        unit, planned = self._plan(account)
        record_requests(
            self._connection,
            account.tenant_id,
            account.id,
            account.provider,
            paid_requests - planned,
            unit=unit,
            month=self._month,
        )
