"""One tenant's cost summary as markdown: the spend chart, the week's movers, the anomalies.

Pure: it takes the tenant's service-day costs and stored anomalies as frames and returns the
markdown and the PNG; the ``cost_summary`` asset reads the frames and writes the metadata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from finops_pipeline.insights.anomalies import DETECTOR_SOURCE
from finops_pipeline.insights.chart import (
    MAX_CHART_BYTES,
    chart_markdown,
    currency_formatter,
    dominant_currency,
    render_spend_chart,
    week_over_week_movers,
)

#: ``cost_anomalies.source`` values as the table names them; a provider's totals cover every
#: day of its anomaly, ours one day.
_SOURCE_NAMES = {
    DETECTOR_SOURCE: "ours",
    "aws_cost_anomaly_detection": "AWS, whole anomaly",
}

#: Days the chart shows, ending at the tenant's newest day: eight whole weeks.
SUMMARY_DAYS = 56
MOVERS_SHOWN = 8
ANOMALIES_LISTED = 10


@dataclass(frozen=True)
class TenantSummary:
    """What the ``cost_summary`` materialisation of one tenant shows."""

    tenant_id: str
    start: dt.date | None
    end: dt.date | None
    #: "<start> to <end>", or "no costs yet".
    period: str
    currency: str
    markdown: str
    png: bytes
    movers: pd.DataFrame
    anomalies_shown: int
    last_7_days: float


def build_tenant_summary(
    tenant_id: str,
    daily: pd.DataFrame,
    anomalies: pd.DataFrame,
    *,
    movers_shown: int = MOVERS_SHOWN,
    chart_limit: int = MAX_CHART_BYTES,
) -> TenantSummary:
    """The tenant's chart, week-over-week movers and anomaly list.

    Args:
        tenant_id: The tenant, for titles.
        daily: Service-day gross costs of all its accounts (``service``, ``currency``,
            ``date``, ``cost``), over the period to show.
        anomalies: Its stored anomalies in that period (``service``, ``currency``, ``date``,
            ``direction``, ``confirmed``, ``impact``, ``expected``, ``actual``).
        movers_shown: Rows of the movers table.
        chart_limit: Largest PNG embedded in the markdown.
    """
    by_service = (
        daily.groupby(["service", "currency", "date"], as_index=False)["cost"].sum()
        if not daily.empty
        else pd.DataFrame(columns=["service", "currency", "date", "cost"])
    )
    currency = dominant_currency(by_service)
    shown = by_service[by_service["currency"] == currency]
    start = min(shown["date"]) if not shown.empty else None
    end = max(shown["date"]) if not shown.empty else None
    period = f"{start} to {end}" if start else "no costs yet"
    png = render_spend_chart(
        shown, anomalies, title=f"{tenant_id}: daily spend by service, {period}"
    )
    movers = week_over_week_movers(shown, top=movers_shown)
    label = currency_formatter(currency)
    last_week = (
        float(
            shown[pd.to_datetime(shown["date"]) > pd.Timestamp(end) - pd.Timedelta(days=7)][
                "cost"
            ].sum()
        )
        if end
        else 0.0
    )
    listed = _anomalies_in(anomalies, currency)
    lines = [
        f"### {tenant_id}: daily spend, {period} ({currency})",
        "",
        chart_markdown(png, alt=f"{tenant_id} daily spend", limit=chart_limit),
        "",
        "Triangles mark anomalies: ▲ a spike, ▼ a drop; hollow ones are not yet confirmed by "
        "the days after them.",
        "",
        "#### Biggest movers, last 7 days against the 7 before",
        "",
        *_movers_table(movers, label),
        "",
        f"#### Anomalies ({len(listed)} in the period"
        + (f", the largest {ANOMALIES_LISTED} shown)" if len(listed) > ANOMALIES_LISTED else ")"),
        "",
        *_anomalies_table(listed.head(ANOMALIES_LISTED), label),
    ]
    return TenantSummary(
        tenant_id=tenant_id,
        start=start,
        end=end,
        period=period,
        currency=currency,
        markdown="\n".join(lines),
        png=png,
        movers=movers,
        anomalies_shown=len(listed),
        last_7_days=last_week,
    )


def _anomalies_in(anomalies: pd.DataFrame, currency: str) -> pd.DataFrame:
    if anomalies.empty:
        return anomalies.assign(magnitude=pd.Series(dtype=float))
    mine = anomalies[anomalies["currency"].str.upper() == currency].copy()
    mine["magnitude"] = mine["impact"].astype(float).abs()
    return mine.sort_values(["magnitude", "date"], ascending=[False, False])


def _movers_table(movers: pd.DataFrame, label: FuncFormatter) -> list[str]:
    if movers.empty:
        return ["_Not enough days for a week-over-week comparison yet._"]
    rows = [
        "| service | previous 7 days | last 7 days | change | change % |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in movers.itertuples(index=False):
        percent = "new" if np.isnan(row.change_pct) else f"{row.change_pct:+.1f}%"
        rows.append(
            f"| {_cell(row.service)} | {label(row.previous_week)} | {label(row.this_week)} "
            f"| {_signed(label, row.change)} | {percent} |"
        )
    return rows


def _anomalies_table(anomalies: pd.DataFrame, label: FuncFormatter) -> list[str]:
    if anomalies.empty:
        return ["_No anomalies in this period._"]
    rows = [
        "| day | service | direction | expected | actual | impact | source |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in anomalies.itertuples(index=False):
        direction = str(row.direction) + ("" if bool(row.confirmed) else " (unconfirmed)")
        source = getattr(row, "source", DETECTOR_SOURCE)
        rows.append(
            f"| {row.date} | {_cell(row.service)} | {direction} "
            f"| {label(float(row.expected))} | {label(float(row.actual))} "
            f"| {_signed(label, float(row.impact))} | {_SOURCE_NAMES.get(source, source)} |"
        )
    return rows


def _signed(label: FuncFormatter, value: float) -> str:
    text = label(abs(value))
    return f"+{text}" if value >= 0 else f"-{text}"


def _cell(text: object) -> str:
    # A pipe would end the markdown cell.
    return str(text).replace("|", "\\|")
