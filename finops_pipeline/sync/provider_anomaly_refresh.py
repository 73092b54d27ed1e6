"""Storing the providers' own anomaly detection results, account by account.

Dagster-free: the ``provider_cost_anomalies`` asset hands it its account partitions. Each
account's anomalies replace what its provider reported before over the same window (source
``aws_cost_anomaly_detection`` for AWS), beside the detector's own rows in ``cost_anomalies``.
One account's provider error fails that account alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from finops_pipeline.db.accounts import CloudAccount, get_account
from finops_pipeline.db.anomalies import AccountScope, AnomalyWriteStats, replace_anomalies
from finops_pipeline.errors import FinopsError
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange
from finops_pipeline.sync.recommendation_refresh import AccountRefreshFailure

logger = logging.getLogger(__name__)

#: Days of anomalies read per account, ending today: Cost Anomaly Detection keeps 90.
PROVIDER_ANOMALY_DAYS = 90


class ProviderAnomalyCollector(Protocol):
    """A provider resource that reads its cloud's own anomaly detection."""

    provider: str

    def fetch_provider_anomalies(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> Any:
        """An object with ``rows``, ``paid_requests`` and ``source`` (see
        :class:`~finops_pipeline.providers.aws.anomalies.FetchedAnomalies`)."""
        ...


@dataclass
class ProviderAnomalyReport:
    """Every account of one run: stored, skipped (no anomaly detection) or failed."""

    stored: dict[str, int] = field(default_factory=dict)
    paid_requests_by_account: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failures: list[AccountRefreshFailure] = field(default_factory=list)
    stats: AnomalyWriteStats = field(default_factory=AnomalyWriteStats)

    @property
    def paid_requests(self) -> int:
        return sum(self.paid_requests_by_account.values())


def refresh_provider_anomalies(
    account_ids: Sequence[str],
    *,
    connection: psycopg.Connection,
    decrypt: Callable[[CloudAccount], Credentials],
    collectors: Mapping[str, ProviderAnomalyCollector],
    today: dt.date,
    run_id: str | None = None,
) -> ProviderAnomalyReport:
    """Read and store each account's provider anomalies of the last
    :data:`PROVIDER_ANOMALY_DAYS` days."""
    window = DateRange(today - dt.timedelta(days=PROVIDER_ANOMALY_DAYS - 1), today)
    report = ProviderAnomalyReport()
    for account_id in account_ids:
        tenant_id: str | None = None
        try:
            account = get_account(connection, account_id)
            tenant_id = account.tenant_id
            collector = collectors.get(account.provider)
            if collector is None:
                report.skipped.append(account_id)
                continue
            fetched = collector.fetch_provider_anomalies(account, decrypt(account), window)
            report.paid_requests_by_account[account_id] = fetched.paid_requests
            report.stats += replace_anomalies(
                connection,
                AccountScope(account.id, account.tenant_id),
                fetched.rows,
                start=window.start,
                end=window.end,
                source=fetched.source,
                run_id=run_id,
            )
            report.stored[account_id] = len(fetched.rows)
        except FinopsError as error:
            logger.warning("Provider anomalies of account %s failed: %s", account_id, error)
            report.failures.append(
                AccountRefreshFailure(
                    account_id, tenant_id, type(error).__name__, str(error), error.permanent
                )
            )
    return report
