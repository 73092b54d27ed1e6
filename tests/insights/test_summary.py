"""A tenant's summary markdown: chart, movers and anomalies, also for a tenant without costs."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pandas as pd

from finops_pipeline.insights.summary import ANOMALIES_LISTED, build_tenant_summary

EMPTY_ANOMALIES = pd.DataFrame(
    columns=[
        "service",
        "currency",
        "date",
        "direction",
        "confirmed",
        "impact",
        "expected",
        "actual",
    ]
)


def daily(days: int = 21) -> pd.DataFrame:
    start = dt.date(2026, 6, 1)
    rows = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        rows.append(("EC2", "USD", day, 100.0 + (50.0 if offset >= days - 7 else 0.0)))
        rows.append(("S3|archive", "USD", day, 20.0))
    return pd.DataFrame(rows, columns=["service", "currency", "date", "cost"])


def test_a_tenant_without_costs_gets_a_plain_summary() -> None:
    summary = build_tenant_summary(
        "newco", pd.DataFrame(columns=["service", "currency", "date", "cost"]), EMPTY_ANOMALIES
    )
    assert (summary.start, summary.end, summary.last_7_days) == (None, None, 0.0)
    assert summary.png.startswith(b"\x89PNG")
    assert "no costs yet" in summary.markdown
    assert "Not enough days" in summary.markdown and "No anomalies" in summary.markdown


def test_movers_and_the_largest_anomalies_are_listed() -> None:
    days = daily()
    anomalies = pd.DataFrame(
        [
            (
                "EC2",
                "USD",
                dt.date(2026, 6, 1) + dt.timedelta(days=n),
                "spike",
                n < 5,
                float(n + 1),
                100.0,
                101.0 + n,
            )
            for n in range(ANOMALIES_LISTED + 2)
        ],
        columns=EMPTY_ANOMALIES.columns,
    )
    summary = build_tenant_summary("acme", days, anomalies)
    assert summary.period == "2026-06-01 to 2026-06-21"
    assert summary.last_7_days == 7 * 170.0
    lines = summary.markdown.splitlines()
    movers = lines.index("| service | previous 7 days | last 7 days | change | change % |")
    assert lines[movers + 2] == "| EC2 | $700 | $1.1k | +$350 | +50.0% |"
    # A pipe in a service name cannot break the table.
    assert "| S3\\|archive | $140 | $140 | +$0 | +0.0% |" in lines
    assert f"#### Anomalies ({ANOMALIES_LISTED + 2} in the period, the largest 10 shown)" in lines
    rows = [line for line in lines if line.startswith("| 2026-06-")]
    assert len(rows) == ANOMALIES_LISTED and rows[0].startswith(
        "| 2026-06-12 | EC2 | spike (unconfirmed)"
    )
    png = base64.b64decode(re.search(r"base64,([^)]+)\)", summary.markdown).group(1))  # type: ignore[union-attr]
    assert png == summary.png
