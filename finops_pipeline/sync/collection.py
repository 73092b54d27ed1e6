"""Collecting costs for a block of accounts × date ranges: fetch, normalise, load.

This is the seed service's ``collectCostsForAccount`` workflow, without Dagster: the asset
hands it the partitions of a run and turns its report into materialisation metadata.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
import psycopg

from finops_pipeline.db.accounts import CloudAccount, get_accounts
from finops_pipeline.db.cost_loader import WindowLoadStats, count_window_rows
from finops_pipeline.db.organizations import payers_of
from finops_pipeline.db.watermarks import record_watermarks
from finops_pipeline.db.window_load import load_window
from finops_pipeline.errors import DatabaseConnectionLostError, FinopsError
from finops_pipeline.providers.base import (
    CostCollector,
    ProviderTotals,
    ReconcilingCollector,
    collector_for,
)
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.amounts import as_decimals
from finops_pipeline.sync.budgets import paid_unit, reserve_run, spent_units
from finops_pipeline.sync.memory import return_freed_memory_to_os
from finops_pipeline.sync.normalise import check_rows_within_window, normalise_cost_rows
from finops_pipeline.sync.outcomes import AccountRunOutcome, SyncStatus
from finops_pipeline.sync.ranges import DateRange

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 10


@dataclass(frozen=True)
class WindowResult:
    """One account's date range after fetch and load."""

    account_id: str
    tenant_id: str
    window: DateRange
    paid_requests: int
    estimated_days: int
    final_days: int
    load: WindowLoadStats | None  # None when the provider had no data yet
    #: Not kept by :func:`collect_costs`: a range run over many accounts would hold every
    #: window's frame. The report keeps running aggregates instead.
    rows: pd.DataFrame | None = None
    #: Rows the window already held when the provider had no data yet; they were kept.
    rows_kept: int = 0
    #: Of ``paid_requests``, those spent on the provider's own totals (reconciliation).
    reconciliation_requests: int = 0
    provider: str = ""
    #: Every request the provider answered (None: only paid ones are counted).
    requests: int | None = None
    quota_consumed: Decimal = Decimal(0)
    quota_unit: str | None = None
    #: The provider's own counters (e.g. ``gcp_bytes_billed``), see ``FetchedCosts``.
    usage_metrics: Mapping[str, int] = field(default_factory=dict)

    @property
    def rows_in_window(self) -> int:
        """What ``cost_data`` holds for the window now: loaded, or kept for lack of new data."""
        return self.load.rows_in_window if self.load else self.rows_kept

    @property
    def no_data_note(self) -> str | None:
        """Why nothing was loaded, when the provider had no data yet."""
        if self.load is not None:
            return None
        return (
            f"{self.account_id}: no data available yet for {self.window}; existing rows kept "
            f"({self.rows_kept:,} rows)"
        )


@dataclass(frozen=True)
class AccountFailure:
    """Why one account failed; the message is safe to show and store."""

    account_id: str
    tenant_id: str
    error_type: str
    message: str
    permanent: bool


_ServiceKey = tuple[str, str, str]  # account, service, currency


@dataclass
class CostAggregates:
    """Running totals of the rows loaded, so the report never holds a window's frame.

    Totals per currency are exact. Per (account, service, currency) totals are kept only for
    the account being collected; when it is done, only the costliest ``keep`` survive, so the
    memory does not grow with the number of accounts.
    """

    keep: int = PREVIEW_ROWS
    by_currency: dict[str, Decimal] = field(default_factory=dict)
    top: list[tuple[_ServiceKey, Decimal, int]] = field(default_factory=list)
    _current: dict[_ServiceKey, tuple[Decimal, int]] = field(default_factory=dict)

    def add(self, rows: pd.DataFrame) -> None:
        """Add one loaded window's rows (windows of one account must not overlap)."""
        if rows.empty:
            return
        # Group first (cheap, on the shared name objects), then sum each group exactly.
        grouped = rows.groupby(
            ["cloud_account_id", "service", "currency"], sort=False, dropna=False
        )
        for (account, service, currency), group in grouped:
            amount = sum(as_decimals(group["unblended_cost"]), Decimal(0))
            days = int(group["date"].nunique())
            key = (str(account), str(service), str(currency))
            total, seen_days = self._current.get(key, (Decimal(0), 0))
            self._current[key] = (total + amount, seen_days + days)
            self.by_currency[str(currency)] = (
                self.by_currency.get(str(currency), Decimal(0)) + amount
            )

    def close_account(self) -> None:
        """The current account is done: fold its service totals into the top list."""
        merged = self.top + [(key, total, days) for key, (total, days) in self._current.items()]
        merged.sort(key=lambda entry: entry[1], reverse=True)
        self.top = merged[: self.keep]
        self._current = {}


@dataclass
class CollectionReport:
    """Everything a run did, for metadata, sensors and the CLI."""

    windows: list[WindowResult] = field(default_factory=list)
    failures: list[AccountFailure] = field(default_factory=list)
    skipped_accounts: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    totals: CostAggregates = field(default_factory=CostAggregates)
    #: Member and management accounts -> the payer whose credentials they use.
    payer_of: dict[str, str] = field(default_factory=dict)
    #: Tenant -> its paid requests this month against its budget, after the run.
    budgets: dict[str, str] = field(default_factory=dict)

    def paid_requests_by_payer(self) -> dict[str, int]:
        """Paid requests of payers and their members, per payer: they grow with members."""
        totals: dict[str, int] = {}
        for window in self.windows:
            payer = self.payer_of.get(window.account_id)
            if payer is not None:
                totals[payer] = totals.get(payer, 0) + window.paid_requests
        return totals

    @property
    def paid_requests(self) -> int:
        return sum(window.paid_requests for window in self.windows)

    def requests_by_provider(self) -> dict[str, int]:
        """Requests per provider, for providers that count them apart from paid ones."""
        totals: dict[str, int] = {}
        for window in self.windows:
            if window.requests is not None:
                totals[window.provider] = totals.get(window.provider, 0) + window.requests
        return totals

    def quota_consumed(self) -> dict[str, Decimal]:
        """Provider quota consumed, per quota unit (e.g. ``azure_qpu``)."""
        totals: dict[str, Decimal] = {}
        for window in self.windows:
            if window.quota_unit is not None:
                unit = window.quota_unit
                totals[unit] = totals.get(unit, Decimal(0)) + window.quota_consumed
        return totals

    def usage_metrics(self) -> dict[str, int]:
        """Each provider counter summed over the run's windows, by name."""
        totals: dict[str, int] = {}
        for window in self.windows:
            for name, value in window.usage_metrics.items():
                totals[name] = totals.get(name, 0) + int(value)
        return totals

    @property
    def reconciliation_requests(self) -> int:
        return sum(window.reconciliation_requests for window in self.windows)

    @property
    def rows_in_windows(self) -> int:
        return sum(window.rows_in_window for window in self.windows)

    @property
    def no_data_notes(self) -> list[str]:
        """One line per window the provider had no data for yet (its rows were kept)."""
        return [note for window in self.windows if (note := window.no_data_note)]

    def failure_summary(self, *, loaded_earlier: int = 0) -> str:
        """The first line of a failed run's description: right for one, all, or some accounts.

        Args:
            loaded_earlier: Accounts an earlier attempt of the same run loaded (a retry
                re-reads only the failed ones).
        """
        failed = {failure.account_id for failure in self.failures}
        loaded = len({window.account_id for window in self.windows} - failed) + loaded_earlier
        skipped = len(self.skipped_accounts)
        total = len(failed) + loaded + skipped
        if total == 1:
            return "The account failed; nothing was loaded."
        if len(failed) == total:
            return f"All {total} accounts failed; nothing was loaded."
        others = total - len(failed)
        if loaded == others:
            rest = "the other one was loaded" if others == 1 else f"the other {others} were loaded"
        else:
            rest = f"{loaded} loaded, {skipped} skipped (not active)"
        return f"{len(failed)} of {total} accounts failed; {rest}."

    @property
    def rows_written(self) -> int:
        return sum(window.load.rows_written for window in self.windows if window.load)

    def account_outcomes(self, run_id: str) -> list[AccountRunOutcome]:
        """One outcome per account: success with its rows and range, or the failure."""
        outcomes: dict[str, AccountRunOutcome] = {}
        for window in self.windows:
            previous = outcomes.get(window.account_id)
            load = window.load
            outcomes[window.account_id] = AccountRunOutcome(
                cloud_account_id=window.account_id,
                tenant_id=window.tenant_id,
                run_id=run_id,
                status=SyncStatus.SUCCESS,
                rows_written=(previous.rows_written if previous else 0)
                + (load.rows_written if load else 0),
                rows_in_window=(previous.rows_in_window if previous else 0) + window.rows_in_window,
                paid_requests=(previous.paid_requests if previous else 0) + window.paid_requests,
                range_start=min(window.window.start, previous.range_start)
                if previous and previous.range_start
                else window.window.start,
                range_end=max(window.window.end, previous.range_end)
                if previous and previous.range_end
                else window.window.end,
            )
        for failure in self.failures:
            outcomes[failure.account_id] = AccountRunOutcome(
                cloud_account_id=failure.account_id,
                tenant_id=failure.tenant_id,
                run_id=run_id,
                status=SyncStatus.FAILED,
                error=f"{failure.error_type}: {failure.message}",
            )
        return list(outcomes.values())

    def load_totals(self) -> dict[str, int]:
        totals = {"inserted": 0, "restated": 0, "removed": 0, "unchanged": 0}
        for window in self.windows:
            if window.load:
                for name in totals:
                    totals[name] += getattr(window.load, name)
        return totals

    @property
    def estimated_days(self) -> int:
        return sum(window.estimated_days for window in self.windows)

    @property
    def final_days(self) -> int:
        return sum(window.final_days for window in self.windows)

    def cost_by_currency(self) -> dict[str, Decimal]:
        """Unblended cost loaded, per currency, as exact decimals."""
        return dict(self.totals.by_currency)

    def top_services(self, limit: int = PREVIEW_ROWS) -> pd.DataFrame:
        """The costliest services loaded, per account and currency."""
        self.totals.close_account()
        records = [
            (account, service, currency, total, days)
            for (account, service, currency), total, days in self.totals.top[:limit]
        ]
        return pd.DataFrame.from_records(
            records,
            columns=["cloud_account_id", "service", "currency", "unblended_cost", "days"],
        )


def collect_costs(
    account_ranges: Mapping[str, Sequence[DateRange]],
    *,
    connection: psycopg.Connection,
    decrypt: Callable[[CloudAccount], Credentials],
    collectors: Mapping[str, CostCollector],
    run_id: str | None,
) -> CollectionReport:
    """Fetch and load every account's ranges; one account's failure does not stop the others.

    Each range is one provider query (all its pages) and one window replacement.
    """
    started = time.monotonic()
    return_freed_memory_to_os()
    report = CollectionReport()
    accounts = get_accounts(connection, list(account_ranges))
    report.payer_of = payers_of(connection, [account.id for account in accounts])
    # Before any provider call: a tenant whose budget cannot cover the run gets none of it.
    budget = reserve_run(
        connection,
        accounts,
        {account_id: len(ranges) for account_id, ranges in account_ranges.items()},
        collectors,
    )
    _prepare_collectors(connection, accounts, account_ranges, decrypt, collectors)
    lost: DatabaseConnectionLostError | None = None
    for account in accounts:
        if account.status != "active":
            logger.warning("Skipping account %s: it is %s", account.id, account.status)
            report.skipped_accounts.append(account.id)
            continue
        if lost is not None:
            # Its rows could not be stored, and every Cost Explorer request is paid.
            report.failures.append(
                AccountFailure(
                    account_id=account.id,
                    tenant_id=account.tenant_id,
                    error_type=type(lost).__name__,
                    message="Not collected: the connection to PostgreSQL was lost earlier in "
                    "this run, so nothing was requested from the provider. Re-run once the "
                    "database is reachable.",
                    permanent=False,
                )
            )
            continue
        windows = account_ranges[account.id]
        # Paid requests per finished window; None until the provider is first called.
        paid: list[int] | None = None
        try:
            refusal = budget.refused.get(account.id)
            if refusal is not None:
                raise refusal
            collector = collector_for(account.provider, collectors)
            credentials = decrypt(account)
            paid = []
            for window in windows:
                result = _collect_window(
                    connection, collector, account, credentials, window, run_id, report.totals
                )
                report.windows.append(result)
                paid.append(
                    spent_units(paid_unit(collector), result.paid_requests, result.quota_consumed)
                )
        except FinopsError as error:
            logger.error("Account %s failed: %s", account.id, error)
            report.failures.append(
                AccountFailure(
                    account_id=account.id,
                    tenant_id=account.tenant_id,
                    error_type=type(error).__name__,
                    message=str(error),
                    permanent=error.permanent,
                )
            )
            if isinstance(error, DatabaseConnectionLostError):
                lost = error
        finally:
            report.totals.close_account()
            if not connection.broken:
                # Never called: the whole reservation goes back.
                done = paid if paid is not None else [0] * len(windows)
                budget.settle(connection, account, windows_done=done, windows_total=len(windows))
    if not connection.broken:
        report.budgets = budget.statuses(connection, sorted({a.tenant_id for a in accounts}))
    report.elapsed_seconds = time.monotonic() - started
    return report


def _prepare_collectors(
    connection: psycopg.Connection,
    accounts: Sequence[CloudAccount],
    account_ranges: Mapping[str, Sequence[DateRange]],
    decrypt: Callable[[CloudAccount], Credentials],
    collectors: Mapping[str, CostCollector],
) -> None:
    """Let collectors that plan a run (GCP's shared export queries) see its active accounts."""
    for provider, collector in collectors.items():
        prepare = getattr(collector, "prepare_run", None)
        if prepare is None:
            continue
        planned = [
            (account, account_ranges[account.id])
            for account in accounts
            if account.provider == provider and account.status == "active"
        ]
        if planned:
            prepare(connection, planned, decrypt)


def _collect_window(
    connection: psycopg.Connection,
    collector: CostCollector,
    account: CloudAccount,
    credentials: Credentials,
    window: DateRange,
    run_id: str | None,
    totals: CostAggregates,
) -> WindowResult:
    fetched = collector.fetch_daily_costs(account, credentials, window)
    rows = normalise_cost_rows(
        fetched.parsed.frame,
        tenant_id=account.tenant_id,
        cloud_account_id=account.id,
        provider=account.provider,
    )
    load: WindowLoadStats | None = None
    rows_kept = 0
    provider_totals: ProviderTotals | None = None
    if not fetched.data_unavailable and isinstance(collector, ReconcilingCollector):
        provider_totals = collector.provider_totals(account, credentials, window)
    if fetched.data_unavailable:
        # A new account has no data yet: that is not "every day is empty", so keep the window,
        # and report what it still holds rather than zero.
        rows_kept = count_window_rows(
            connection,
            tenant_id=account.tenant_id,
            cloud_account_id=account.id,
            provider=account.provider,
            start=window.start,
            end_inclusive=window.end,
        )
        logger.info(
            "No cost data available yet for account %s, %s; kept its %d rows",
            account.id,
            window,
            rows_kept,
        )
    else:
        check_rows_within_window(rows, window.start, window.end)
        # Rows, day markers (a zero-cost day is a marker with no rows) and provider totals
        # commit together: see finops_pipeline.db.window_load.
        load = load_window(
            connection,
            rows,
            tenant_id=account.tenant_id,
            cloud_account_id=account.id,
            provider=account.provider,
            start=window.start,
            end_inclusive=window.end,
            run_id=run_id,
            totals=provider_totals,
        )
        if fetched.day_watermarks or fetched.observed_watermarks:
            # After the load: a failed load keeps the old stamps, so the days are re-pulled.
            record_watermarks(
                connection,
                tenant_id=account.tenant_id,
                cloud_account_id=account.id,
                loaded=fetched.day_watermarks,
                observed=fetched.observed_watermarks,
                run_id=run_id,
            )
        logger.info(
            "Account %s %s: %d rows (%d new, %d restated, %d removed, %d unchanged), "
            "%d paid requests",
            account.id,
            window,
            load.rows_in_window,
            load.inserted,
            load.restated,
            load.removed,
            load.unchanged,
            fetched.paid_requests,
        )
        totals.add(rows)
    return WindowResult(
        account_id=account.id,
        tenant_id=account.tenant_id,
        window=window,
        paid_requests=fetched.paid_requests
        + (provider_totals.paid_requests if provider_totals else 0),
        reconciliation_requests=provider_totals.paid_requests if provider_totals else 0,
        estimated_days=len(fetched.estimated_days),
        final_days=len(fetched.final_days),
        load=load,
        rows_kept=rows_kept,
        provider=account.provider,
        requests=(
            fetched.requests + provider_totals.requests
            if fetched.requests is not None and provider_totals is not None
            else fetched.requests
        ),
        quota_consumed=fetched.quota_consumed
        + (provider_totals.quota_consumed if provider_totals else Decimal(0)),
        quota_unit=fetched.quota_unit,
        usage_metrics=dict(fetched.usage_metrics),
    )
