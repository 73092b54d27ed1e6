"""AWS Cost Anomaly Detection's own anomalies (``GetAnomalies``), as ``cost_anomalies`` rows.

``GetAnomalies`` is billed like every Cost Explorer API: $0.01 per request, every page a
request. One request per account and day covers the last :data:`ANOMALY_HISTORY_DAYS` days
(AWS keeps 90) unless more than :data:`MAX_RESULTS` anomalies are open in them.

An AWS anomaly spans days (``AnomalyStartDate`` to ``AnomalyEndDate``; no end while it lasts)
and reports totals over them. It becomes one row on its first day: ``expected`` and ``actual``
are ``TotalExpectedSpend`` and ``TotalActualSpend`` over its days, ``impact`` is
``TotalImpact``, ``score`` is ``MaxScore`` (AWS's 0-100 scale, not a z-score), ``direction`` is
always a spike (AWS reports increases only) and ``confirmed`` is whether it has ended. The
service is the first root cause's, else the monitor's dimension value. Amounts are USD, the
currency Cost Anomaly Detection reports in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.providers.aws.recommendations import fetch_pages

ANOMALIES_OPERATION = "GetAnomalies"
#: Cost Anomaly Detection keeps 90 days of anomalies.
ANOMALY_HISTORY_DAYS = 90
#: The model's maximum; large pages keep the paid requests down.
MAX_RESULTS = 100
#: ``cost_anomalies.source`` of these rows.
AWS_ANOMALY_SOURCE = "aws_cost_anomaly_detection"
CURRENCY = "USD"

ANOMALY_ROW_COLUMNS: tuple[str, ...] = (
    "service",
    "currency",
    "date",
    "expected",
    "actual",
    "impact",
    "score",
    "direction",
    "confirmed",
)


@dataclass
class FetchedAnomalies:
    """One account's provider anomalies over a window, and the paid requests they took."""

    rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ANOMALY_ROW_COLUMNS))
    start: dt.date | None = None
    end: dt.date | None = None
    paid_requests: int = 0
    source: str = AWS_ANOMALY_SOURCE


def anomalies_request(start: dt.date, end: dt.date) -> dict[str, Any]:
    """The GetAnomalies request for anomalies that started from ``start`` to ``end``."""
    return {
        "DateInterval": {"StartDate": start.isoformat(), "EndDate": end.isoformat()},
        "MaxResults": MAX_RESULTS,
    }


def fetch_aws_anomalies(client: Any, *, start: dt.date, end: dt.date) -> FetchedAnomalies:
    """Every anomaly that started from ``start`` to ``end`` inclusive, as rows."""
    paged = fetch_pages(
        client.get_anomalies, anomalies_request(start, end), operation=ANOMALIES_OPERATION
    )
    return FetchedAnomalies(
        rows=parse_anomaly_pages(paged.pages, start=start, end=end),
        start=start,
        end=end,
        paid_requests=paged.paid_requests,
    )


def parse_anomaly_pages(
    pages: Sequence[Mapping[str, Any]], *, start: dt.date, end: dt.date
) -> pd.DataFrame:
    """Rows of :data:`ANOMALY_ROW_COLUMNS`, one per (service, first day): where two monitors
    report the same service and day, the larger total impact is kept."""
    rows = [parse_anomaly(anomaly) for page in pages for anomaly in page.get("Anomalies") or []]
    frame = pd.DataFrame(rows, columns=list(ANOMALY_ROW_COLUMNS))
    if frame.empty:
        return frame
    frame = frame[(frame["date"] >= start) & (frame["date"] <= end)]
    frame = frame.sort_values(["service", "date", "impact"], ascending=[True, True, False])
    return frame.drop_duplicates(["service", "currency", "date"]).reset_index(drop=True)


def parse_anomaly(anomaly: Mapping[str, Any]) -> tuple[Any, ...]:
    """One ``Anomaly`` as a row of :data:`ANOMALY_ROW_COLUMNS`."""
    anomaly_id = anomaly.get("AnomalyId") or "an anomaly"
    try:
        first_day = dt.date.fromisoformat(str(anomaly.get("AnomalyStartDate"))[:10])
    except ValueError:
        raise ProviderDataError(
            f"Cost Anomaly Detection sent {anomaly_id} without a valid start date; nothing "
            "was stored for this account."
        ) from None
    causes = anomaly.get("RootCauses") or []
    service = next(
        (cause["Service"] for cause in causes if cause.get("Service")),
        anomaly.get("DimensionValue"),
    )
    if not service:
        raise ProviderDataError(
            f"Cost Anomaly Detection sent {anomaly_id} without a service; nothing was stored."
        )
    impact = anomaly.get("Impact") or {}
    total_impact = float(impact.get("TotalImpact", impact.get("MaxImpact", 0.0)))
    actual = float(impact.get("TotalActualSpend", 0.0))
    expected = float(impact.get("TotalExpectedSpend", actual - total_impact))
    score = float((anomaly.get("AnomalyScore") or {}).get("MaxScore", 0.0))
    return (
        str(service),
        CURRENCY,
        first_day,
        expected,
        actual,
        total_impact,
        score,
        "spike",
        bool(anomaly.get("AnomalyEndDate")),
    )
