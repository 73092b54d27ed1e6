"""A tenant's daily spend as a PNG for Dagster markdown metadata, and week-over-week movers.

The Dagster UI has no inline image type: a PNG as a base64 data URI inside
``MetadataValue.md`` shows behind "Show Markdown" at its pixel size, and raw HTML ``<img>`` is
stripped. Every asset-page view downloads a week of materialisation metadata, so the chart is
kept small. It is drawn on a ``Figure`` with the Agg canvas directly, never through pyplot,
so no global backend or figure state is touched. 800 × 400 px, typically 50–90 KB, and never embedded above
:data:`MAX_CHART_BYTES`.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from PIL import Image

from finops_pipeline.insights.anomalies import DROP, SPIKE

#: Above this, the markdown carries a note instead of the chart.
MAX_CHART_BYTES = 200_000
CHART_SIZE_INCHES = (8.0, 4.0)
CHART_DPI = 100
OTHER_SERVICES = "Other services"
_LABEL_CHARACTERS = 30
_PNG_COLOURS = 96
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CNY": "¥"}
# Colour-blind-safe (Okabe–Ito); anomalies use their own red and blue markers.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_OTHER_COLOUR = "#9A9A9A"
_SPIKE_COLOUR = "#D62728"
_DROP_COLOUR = "#1F3B99"
_MARKERS = ((SPIKE, "^", _SPIKE_COLOUR), (DROP, "v", _DROP_COLOUR))

#: Columns of :func:`week_over_week_movers`' result, after the ``by`` columns.
MOVER_COLUMNS: tuple[str, ...] = ("previous_week", "this_week", "change", "change_pct")


def currency_formatter(currency: str) -> FuncFormatter:
    """Axis labels like ``$1.2k``; codes without a symbol are written after the number."""
    symbol = _SYMBOLS.get(currency.upper())

    def label(value: float, _position: object = None) -> str:
        magnitude = abs(value)
        if magnitude >= 1_000_000:
            text = f"{value / 1_000_000:.1f}M"
        elif magnitude >= 1_000:
            text = f"{value / 1_000:.1f}k"
        else:
            text = f"{value:.0f}"
        text = text.replace(".0M", "M").replace(".0k", "k")
        return f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"

    return FuncFormatter(label)


#: Legend names for long service names; anything else longer than the legend is cut.
SHORT_SERVICE_NAMES: dict[str, str] = {
    "Amazon Elastic Compute Cloud - Compute": "EC2 - Compute",
    "Amazon Relational Database Service": "RDS",
    "Amazon Simple Storage Service": "S3",
    "Amazon Elastic Container Service for Kubernetes": "EKS",
    "Amazon Elastic Container Service": "ECS",
    "Amazon Elastic File System": "EFS",
    "Amazon Managed Streaming for Apache Kafka": "MSK (Kafka)",
    "Amazon DocumentDB (with MongoDB compatibility)": "DocumentDB",
    "Amazon EC2 Container Registry (ECR)": "ECR",
    "Savings Plans for AWS Compute usage": "Savings Plans (Compute)",
    "Amazon Simple Notification Service": "SNS",
    "Amazon Simple Queue Service": "SQS",
    "Amazon Simple Email Service": "SES",
    "Amazon OpenSearch Service": "OpenSearch",
}


def _short(name: str) -> str:
    name = SHORT_SERVICE_NAMES.get(name, name)
    if len(name) <= _LABEL_CHARACTERS:
        return name
    return name[: _LABEL_CHARACTERS - 1].rstrip(" -") + "…"


def dominant_currency(daily: pd.DataFrame) -> str:
    """The currency carrying the most spend (ties: alphabetical), for a one-currency chart."""
    if daily.empty:
        return "USD"
    totals = daily.groupby("currency")["cost"].sum()
    return str(sorted(totals.items(), key=lambda item: (-item[1], item[0]))[0][0])


def spend_by_service(
    daily: pd.DataFrame, *, currency: str, top_services: int
) -> tuple[pd.DataFrame, list[str]]:
    """Daily spend per top service plus one column for the rest, and the top services' names.

    Args:
        daily: Service-day costs (``service``, ``currency``, ``date``, ``cost``), any accounts.
        currency: The only currency kept.
        top_services: How many services by total spend get their own column.
    """
    rows = daily[daily["currency"] == currency]
    if rows.empty:
        return pd.DataFrame(), []
    totals = rows.groupby("service")["cost"].sum()
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    top = [str(service) for service, _ in ranked[:top_services]]
    wide = rows.pivot_table(index="date", columns="service", values="cost", aggfunc="sum")
    wide.index = pd.to_datetime(wide.index)
    wide = wide.asfreq("D").fillna(0.0)
    spend = wide[top].copy()
    rest = [column for column in wide.columns if column not in top]
    if rest:
        spend[OTHER_SERVICES] = wide[rest].sum(axis=1)
    return spend, top


def render_spend_chart(
    daily: pd.DataFrame,
    anomalies: pd.DataFrame | None = None,
    *,
    title: str,
    top_services: int = 6,
    currency: str | None = None,
) -> bytes:
    """Daily spend of the top services as an 800 × 400 PNG, anomalies marked on their line.

    Args:
        daily: Service-day costs (see :func:`spend_by_service`), e.g. from
            :func:`~finops_pipeline.insights.anomalies.aggregate_service_days`, one tenant.
        anomalies: The detector's anomalies for those accounts (``service``, ``date``,
            ``direction``, ``currency``); an anomaly outside the top services is marked on
            the "Other services" line, at that line's value.
        title: The chart's title, e.g. the tenant's name.
        top_services: Services drawn on their own line; the rest are summed.
        currency: The currency drawn; default the one carrying the most spend.

    Returns:
        The PNG's bytes.
    """
    currency = (currency or dominant_currency(daily)).upper()
    spend, top = spend_by_service(daily, currency=currency, top_services=top_services)
    figure = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if spend.empty:
        axes.text(0.5, 0.5, "No spend in this period", ha="center", va="center")
        axes.set_axis_off()
    else:
        _draw_lines(axes, spend)
        marked = _draw_anomalies(axes, spend, top, anomalies, currency)
        _decorate(axes, spend, currency, marked)
        figure.text(0.745, 0.13, _week_summary(spend, currency), fontsize=8, color="#333333")
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold")
    figure.subplots_adjust(left=0.08, right=0.72, top=0.9, bottom=0.12)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    """The figure as a palette PNG: anti-aliased lines need few colours, and a palette image
    is a third the size of the RGBA one matplotlib writes."""
    canvas = figure.canvas
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())  # type: ignore[attr-defined]
    image = Image.fromarray(pixels[..., :3]).quantize(
        colors=_PNG_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _week_summary(spend: pd.DataFrame, currency: str) -> str:
    """The last 7 days' total and its change on the 7 before, for the chart's corner."""
    totals = spend.sum(axis=1)
    this_week = float(totals.iloc[-7:].sum())
    label = currency_formatter(currency)
    text = f"Last 7 days: {label(this_week)}"
    if len(totals) >= 14:
        previous = float(totals.iloc[-14:-7].sum())
        if previous > 0:
            text += f"\n{(this_week - previous) / previous:+.1%} on the 7 days before"
    return text


def _draw_lines(axes: Axes, spend: pd.DataFrame) -> None:
    for index, column in enumerate(spend.columns):
        other = column == OTHER_SERVICES
        axes.plot(
            spend.index,
            spend[column].to_numpy(),
            label=_short(str(column)),
            color=_OTHER_COLOUR if other else _PALETTE[index % len(_PALETTE)],
            linewidth=1.0 if other else 1.4,
            linestyle="--" if other else "-",
            zorder=2,
        )


def _draw_anomalies(
    axes: Axes,
    spend: pd.DataFrame,
    top: Sequence[str],
    anomalies: pd.DataFrame | None,
    currency: str,
) -> set[tuple[str, bool]]:
    """Mark each anomalous (service, day) on its line; returns the (direction, confirmed) drawn.

    Anomalies whose following days are not in yet (``confirmed`` False) are drawn hollow: they
    may still turn out to be the start of a new level.
    """
    if anomalies is None or anomalies.empty:
        return set()
    marks = anomalies[anomalies["currency"].str.upper() == currency].copy()
    if "confirmed" not in marks.columns:
        marks["confirmed"] = True
    marks["line"] = np.where(marks["service"].isin(top), marks["service"], OTHER_SERVICES)
    marks["date"] = pd.to_datetime(marks["date"])
    marks = marks[marks["line"].isin(spend.columns) & marks["date"].isin(spend.index)]
    # Two accounts' anomalies on one service and day are one mark; a spike outranks a drop.
    marks = marks.sort_values(["line", "date", "direction"], ascending=[True, True, False])
    marks = marks.drop_duplicates(["line", "date"])
    drawn: set[tuple[str, bool]] = set()
    for direction, marker, colour in _MARKERS:
        for confirmed in (True, False):
            chosen = marks[(marks["direction"] == direction) & (marks["confirmed"] == confirmed)]
            if chosen.empty:
                continue
            values = [
                spend.at[day, line]
                for line, day in zip(chosen["line"], chosen["date"], strict=True)
            ]
            axes.scatter(
                chosen["date"],
                values,
                marker=marker,
                s=46,
                color=colour if confirmed else "white",
                edgecolors=colour if not confirmed else "white",
                linewidths=1.2 if not confirmed else 0.6,
                zorder=3,
            )
            drawn.add((direction, confirmed))
    return drawn


def _decorate(
    axes: Axes, spend: pd.DataFrame, currency: str, marked: set[tuple[str, bool]]
) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=9)
    axes.xaxis.set_major_locator(locator)
    # No offset label: the title carries the period, and an offset like "2025-Nov" under an
    # axis spanning two months reads as if it all were November.
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    axes.yaxis.set_major_formatter(currency_formatter(currency))
    axes.set_ylabel(f"Daily spend ({currency})", fontsize=9)
    axes.set_ylim(bottom=0)
    # Half a day either side, so a marker on the first or last day is drawn whole.
    margin = pd.Timedelta(hours=12)
    axes.set_xlim(spend.index.min() - margin, spend.index.max() + margin)
    axes.grid(axis="y", color="#E6E6E6", linewidth=0.8)
    axes.tick_params(labelsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    handles, labels = axes.get_legend_handles_labels()
    for direction, marker, colour in _MARKERS:
        for confirmed in (True, False):
            if (direction, confirmed) not in marked:
                continue
            handles.append(
                Line2D(
                    [],
                    [],
                    marker=marker,
                    linestyle="",
                    markersize=7,
                    color=colour if confirmed else "white",
                    markeredgecolor=colour,
                )
            )
            labels.append(f"{direction}" + ("" if confirmed else " (not yet confirmed)"))
    axes.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7.5,
        frameon=False,
        title="Services · anomalies" if marked else "Services",
        title_fontsize=8,
        alignment="left",
    )


def chart_markdown(png: bytes, *, alt: str, limit: int = MAX_CHART_BYTES) -> str:
    """Markdown embedding ``png`` as a base64 data URI, or a note if it is over ``limit``."""
    if len(png) > limit:
        return f"_{alt}: chart omitted, {len(png) // 1000} KB is over {limit // 1000} KB._"
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"


def week_over_week_movers(
    daily: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    top: int = 10,
    by: Sequence[str] = ("service",),
) -> pd.DataFrame:
    """The biggest changes in spend between the last 7 days and the 7 before.

    Args:
        daily: Service-day costs with the ``by`` columns, ``date`` and ``cost`` (one currency,
            or include ``currency`` in ``by``).
        as_of: The last day of "this week", inclusive; default the latest day in ``daily``.
        top: Rows kept, largest absolute change first.
        by: What a row is: a service (default), or e.g. account and service.

    Returns:
        Columns ``by`` then :data:`MOVER_COLUMNS`; ``change_pct`` is the change over the
        previous week in percent, NaN when the previous week cost nothing.
    """
    columns = [*by, *MOVER_COLUMNS]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    dates = pd.to_datetime(daily["date"]).dt.date
    last = as_of or max(dates)
    this_start = last - dt.timedelta(days=6)
    previous_start = this_start - dt.timedelta(days=7)
    window = daily.assign(date=dates)
    window = window[(window["date"] >= previous_start) & (window["date"] <= last)]
    window = window.assign(
        week=np.where(window["date"] >= this_start, "this_week", "previous_week")
    )
    table = window.pivot_table(
        index=list(by), columns="week", values="cost", aggfunc="sum", fill_value=0.0
    )
    table = table.reindex(columns=["previous_week", "this_week"], fill_value=0.0).reset_index()
    table.columns.name = None
    table["change"] = table["this_week"] - table["previous_week"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["change_pct"] = np.where(
            table["previous_week"] != 0,
            100.0 * table["change"] / table["previous_week"].abs(),
            np.nan,
        )
    table["magnitude"] = table["change"].abs()
    table = table.sort_values(["magnitude", *by], ascending=[False, *([True] * len(by))])
    return table[columns].head(top).reset_index(drop=True)
