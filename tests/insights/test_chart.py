"""The spend chart (a real PNG of the right size) and the week-over-week movers table."""

from __future__ import annotations

import base64
import datetime as dt
import io
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from finops_pipeline.insights.anomalies import aggregate_service_days, detect_anomalies
from finops_pipeline.insights.chart import (
    MAX_CHART_BYTES,
    MOVER_COLUMNS,
    OTHER_SERVICES,
    chart_markdown,
    currency_formatter,
    render_spend_chart,
    spend_by_service,
    week_over_week_movers,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
START = dt.date(2025, 10, 1)
SERVICES = {
    "Amazon Elastic Compute Cloud - Compute": 1200.0,
    "Amazon Relational Database Service": 700.0,
    "Amazon Simple Storage Service": 300.0,
    "Elastic Load Balancing": 250.0,
    "AmazonCloudWatch": 90.0,
    "AWS Lambda": 40.0,
    "Amazon Route 53": 6.0,
    "AWS Key Management Service": 3.0,
}


def tenant_costs(days: int = 270) -> pd.DataFrame:
    """Two accounts of one tenant, weekly shape and noise, a spike and a drop planted."""
    rng = np.random.default_rng(7)
    records = []
    for account in ("acct-a", "acct-b"):
        for service, base in SERVICES.items():
            for offset in range(days):
                day = START + dt.timedelta(days=offset)
                cost = base * (0.7 if day.weekday() >= 5 else 1.0) * rng.uniform(0.9, 1.1)
                if account == "acct-a" and service == "AWS Lambda" and offset in (200, 201):
                    cost *= 12
                if account == "acct-b" and "Relational" in service and offset == 230:
                    cost *= 0.1
                records.append((account, day, service, "usage", cost, "USD"))
    return pd.DataFrame.from_records(
        records,
        columns=["cloud_account_id", "date", "service", "usage_type", "unblended_cost", "currency"],
    )


@pytest.fixture(scope="module")
def rendered() -> tuple[bytes, pd.DataFrame]:
    costs = tenant_costs()
    anomalies = detect_anomalies(costs)
    daily = aggregate_service_days(costs)
    return render_spend_chart(daily, anomalies, title="Acme Retail: daily spend"), anomalies


def test_the_chart_is_a_valid_png_of_800_by_400_under_the_size_limit(
    rendered: tuple[bytes, pd.DataFrame],
) -> None:
    png, anomalies = rendered

    assert set(anomalies["direction"]) == {"spike", "drop"}  # both kinds are drawn
    assert png.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every chunk: a truncated or corrupt file raises here
    assert image.format == "PNG"
    assert image.size == (800, 400)
    assert 10_000 < len(png) < MAX_CHART_BYTES
    # Not a blank canvas: lines in several colours and the red spike markers.
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = {tuple(pixel) for pixel in pixels[::7]}
    assert len(colours) > 12
    assert any(r > 180 and g < 80 and b < 80 for r, g, b in colours)


def test_the_markdown_embeds_the_png_as_a_data_uri(rendered: tuple[bytes, pd.DataFrame]) -> None:
    png, _ = rendered

    markdown = chart_markdown(png, alt="Acme Retail daily spend")

    prefix = "![Acme Retail daily spend](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    assert base64.b64decode(markdown[len(prefix) : -1]) == png
    assert len(markdown) < math.ceil(MAX_CHART_BYTES * 4 / 3) + 100


def test_a_chart_over_the_limit_becomes_a_note() -> None:
    markdown = chart_markdown(b"x" * 300_000, alt="Big")
    assert "data:image" not in markdown
    assert "300 KB is over 200 KB" in markdown


def test_no_spend_still_renders_a_png() -> None:
    empty = pd.DataFrame(columns=["service", "currency", "date", "cost"])
    png = render_spend_chart(empty, None, title="Nobody")
    assert Image.open(io.BytesIO(png)).size == (800, 400)


def test_top_services_get_a_line_each_and_the_rest_are_summed() -> None:
    daily = aggregate_service_days(tenant_costs(days=14))

    spend, top = spend_by_service(daily, currency="USD", top_services=3)

    assert top == [
        "Amazon Elastic Compute Cloud - Compute",
        "Amazon Relational Database Service",
        "Amazon Simple Storage Service",
    ]
    assert list(spend.columns) == [*top, OTHER_SERVICES]
    assert len(spend) == 14
    assert spend.to_numpy().sum() == pytest.approx(daily["cost"].sum())


def test_only_one_currency_is_drawn() -> None:
    daily = aggregate_service_days(tenant_costs(days=14))
    euros = daily.assign(currency="EUR", cost=daily["cost"] / 100)

    spend, _ = spend_by_service(pd.concat([daily, euros]), currency="EUR", top_services=3)

    assert spend.to_numpy().sum() == pytest.approx(daily["cost"].sum() / 100)


@pytest.mark.parametrize(
    ("currency", "value", "label"),
    [
        ("USD", 1500, "$1.5k"),
        ("USD", 2000, "$2k"),
        ("EUR", 750, "€750"),
        ("CHF", 2.5e6, "2.5M CHF"),
    ],
)
def test_axis_labels_carry_the_currency(currency: str, value: float, label: str) -> None:
    assert currency_formatter(currency)(value) == label


def test_movers_compare_the_last_seven_days_with_the_seven_before() -> None:
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(21)]
    records = []
    for day in days:
        this_week = day >= dt.date(2026, 3, 15)
        previous_week = dt.date(2026, 3, 8) <= day < dt.date(2026, 3, 15)
        records.append(("EC2", day, 100.0 if this_week else 50.0))  # +350 on the week
        records.append(("S3", day, 10.0))  # flat
        records.append(("RDS", day, 20.0 if this_week else 80.0))  # -420
        if this_week:
            records.append(("Bedrock", day, 5.0))  # new: no previous week
        if previous_week:
            records.append(("Glue", day, 1.0))  # gone
    daily = pd.DataFrame.from_records(records, columns=["service", "date", "cost"])

    movers = week_over_week_movers(daily, top=4)

    assert list(movers.columns) == ["service", *MOVER_COLUMNS]
    assert movers["service"].tolist() == ["RDS", "EC2", "Bedrock", "Glue"]
    rds, ec2, bedrock, glue = movers.to_dict("records")
    assert (rds["previous_week"], rds["this_week"], rds["change"]) == (560.0, 140.0, -420.0)
    assert rds["change_pct"] == pytest.approx(-75.0)
    assert ec2["change_pct"] == pytest.approx(100.0)
    assert math.isnan(bedrock["change_pct"]) and bedrock["change"] == 35.0
    assert glue["this_week"] == 0.0 and glue["change_pct"] == pytest.approx(-100.0)


def test_movers_as_of_an_earlier_day_and_by_account() -> None:
    daily = aggregate_service_days(tenant_costs(days=30))

    movers = week_over_week_movers(
        daily, as_of=dt.date(2025, 10, 20), by=("cloud_account_id", "service"), top=100
    )

    assert list(movers.columns[:2]) == ["cloud_account_id", "service"]
    assert len(movers) == 2 * len(SERVICES)
    one = movers.iloc[0]
    window = daily[
        (daily["cloud_account_id"] == one["cloud_account_id"])
        & (daily["service"] == one["service"])
    ]
    this_week = window[
        (window["date"] >= pd.Timestamp("2025-10-14"))
        & (window["date"] <= pd.Timestamp("2025-10-20"))
    ]["cost"].sum()
    assert one["this_week"] == pytest.approx(this_week)
    assert movers["change"].abs().is_monotonic_decreasing


def test_movers_of_nothing_is_an_empty_table() -> None:
    empty = pd.DataFrame(columns=["service", "date", "cost"])
    assert list(week_over_week_movers(empty).columns) == ["service", *MOVER_COLUMNS]
