"""Running the anomaly detector over ``cost_data`` and storing what it flags.

Dagster-free: the ``cost_anomalies`` asset calls :func:`refresh_anomalies` whenever
``cost_data`` changed. Each run re-reads the last ``lookback_days`` of every account and
re-judges every day it can (those with a full baseline window before them), so a restated day
updates its anomaly, a point that no longer departs is removed, and a point whose following
days have since arrived becomes confirmed or is dropped as the start of a new level. Accounts
are read a batch at a time, so memory stays bounded however many there are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import psycopg

from finops_pipeline.db.anomalies import (
    DETECTOR_SOURCE,
    AnomalyWriteStats,
    detector_accounts,
    latest_cost_day,
    replace_anomalies,
    service_day_costs,
)
from finops_pipeline.insights.anomalies import DetectorConfig, detect_anomalies

#: Accounts read and judged together.
ACCOUNT_BATCH = 50
DEFAULT_LOOKBACK_DAYS = 120


@dataclass
class AnomalyRefreshReport:
    """What one detector run judged and changed."""

    start: dt.date | None = None
    end: dt.date | None = None
    accounts: int = 0
    service_days: int = 0
    stats: AnomalyWriteStats = field(default_factory=AnomalyWriteStats)
    anomalies: pd.DataFrame = field(default_factory=pd.DataFrame)


def refresh_anomalies(
    connection: psycopg.Connection,
    config: DetectorConfig | None = None,
    *,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    end: dt.date | None = None,
    run_id: str | None = None,
    batch: int = ACCOUNT_BATCH,
) -> AnomalyRefreshReport:
    """Judge every account's last ``lookback_days`` days and store the anomalies found.

    Args:
        connection: An autocommit connection of the pipeline role.
        config: The detector's thresholds.
        lookback_days: Days read per account, ending at ``end``; the first
            ``config.window_days`` of them only serve as the baseline.
        end: Last day judged; default the newest day in ``cost_data``.
        run_id: The Dagster run writing them.
        batch: Accounts read and judged together.

    Returns:
        The span judged, the changes, and every anomaly now stored for it.
    """
    config = config or DetectorConfig()
    if lookback_days <= config.window_days:
        raise ValueError(
            f"lookback_days ({lookback_days}) must exceed the baseline window "
            f"({config.window_days} days)"
        )
    report = AnomalyRefreshReport()
    end = end or latest_cost_day(connection)
    if end is None:
        return report
    read_from = end - dt.timedelta(days=lookback_days - 1)
    # The earliest day with a full baseline window before it; earlier days keep what an
    # earlier run with a longer history found.
    report.start = read_from + dt.timedelta(days=config.window_days)
    report.end = end
    accounts = detector_accounts(connection, read_from, end)
    report.accounts = len(accounts)
    found: list[pd.DataFrame] = []
    for first in range(0, len(accounts), batch):
        scopes = accounts[first : first + batch]
        costs = service_day_costs(connection, [s.account_id for s in scopes], read_from, end)
        report.service_days += len(costs)
        flagged = detect_anomalies(costs, config)
        for scope in scopes:
            mine = flagged[flagged["cloud_account_id"] == scope.account_id]
            report.stats += replace_anomalies(
                connection,
                scope,
                mine,
                start=report.start,
                end=end,
                source=DETECTOR_SOURCE,
                run_id=run_id,
            )
            if not mine.empty:
                found.append(mine.assign(tenant_id=scope.tenant_id))
    report.anomalies = (
        pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=_REPORT_COLUMNS)
    )
    return report


_REPORT_COLUMNS: Sequence[str] = (
    "cloud_account_id",
    "service",
    "currency",
    "date",
    "expected",
    "actual",
    "impact",
    "score",
    "direction",
    "confirmed",
    "tenant_id",
)
