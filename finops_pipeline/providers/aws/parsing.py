"""Parsing GetCostAndUsage pages into a compact pandas DataFrame with exact decimals.

Amounts are validated as :class:`~decimal.Decimal` and kept as their exact decimal text in
Arrow-backed string columns (about 15 bytes a value, against some 100 for a ``Decimal``
object): they are written to PostgreSQL's ``numeric`` as that text, so nothing is rounded, and
a 1M-row window fits in a few hundred MB. Names, units, currencies and days repeat across
rows, so each distinct value is stored once and shared (8 bytes a row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
import pyarrow as pa

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.providers.aws.constants import (
    CE_COST_METRIC_COLUMNS,
    CE_USAGE_COLUMN,
    CE_USAGE_METRIC,
)
from finops_pipeline.providers.base import PARSED_COLUMNS, ParsedCosts
from finops_pipeline.sync.amounts import DECIMAL_TEXT, decimal_text

#: The amount columns, as exact decimal text.
AMOUNT_COLUMNS: tuple[str, ...] = (*CE_COST_METRIC_COLUMNS.values(), CE_USAGE_COLUMN)


def parse_cost_pages(pages: Iterable[dict[str, Any]]) -> ParsedCosts:
    """Turn GetCostAndUsage pages grouped by two dimensions into one row per day and group.

    A day's groups can be split across pages, so the same day may appear on several pages.

    Raises:
        ProviderDataError: a page does not have the documented shape.
    """
    parser = CostPageParser()
    for page in pages:
        parser.add(page)
    return parser.result()


class CostPageParser:
    """Parses GetCostAndUsage pages one at a time, as they arrive.

    The pager hands each page here and drops it, so a window's raw JSON (several times the
    parsed size) is never held whole. :meth:`reset` forgets everything when the pager starts
    the sequence over, so rows of two pagination attempts are never mixed.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every page added so far."""
        self._columns = _Columns()
        self._estimated_by_day: dict[dt.date, bool] = {}
        self._pages = 0

    def add(self, page: dict[str, Any]) -> None:
        """Parse one page.

        Raises:
            ProviderDataError: the page does not have the documented shape.
        """
        self._pages += 1
        page_number = self._pages
        results = page.get("ResultsByTime")
        if not isinstance(results, list):
            raise ProviderDataError(
                f"Cost Explorer page {page_number} has no ResultsByTime list; "
                "the response is malformed. Retry the run; report it if it persists."
            )
        estimated_by_day = self._estimated_by_day
        for result in results:
            day = _parse_day(result, page_number)
            estimated = bool(result.get("Estimated", False))
            estimated_by_day[day] = estimated_by_day.get(day, False) or estimated
            for group in result.get("Groups") or []:
                self._columns.append(_parse_group(group, day, estimated, page_number))
        self._columns.seal_chunk()

    def result(self) -> ParsedCosts:
        """Every row parsed since the last reset, as one frame (call it once)."""
        return ParsedCosts(
            frame=self._columns.frame(), estimated_by_day=dict(self._estimated_by_day)
        )


class _Columns:
    """Parsed rows gathered column by column; amounts go to Arrow a page at a time."""

    def __init__(self) -> None:
        self._shared: dict[object, object] = {}
        self._objects: dict[str, list[object]] = {
            name: [] for name in PARSED_COLUMNS if name not in AMOUNT_COLUMNS
        }
        self._texts: dict[str, list[str]] = {name: [] for name in AMOUNT_COLUMNS}
        self._chunks: dict[str, list[pa.Array]] = {name: [] for name in AMOUNT_COLUMNS}

    def append(self, record: tuple[Any, ...]) -> None:
        for name, value in zip(PARSED_COLUMNS, record, strict=True):
            if name in self._texts:
                self._texts[name].append(value)
            else:
                # One object per distinct value: a million rows share a few thousand names.
                self._objects[name].append(self._shared.setdefault(value, value))

    def seal_chunk(self) -> None:
        for name, texts in self._texts.items():
            if texts:
                self._chunks[name].append(pa.array(texts, type=pa.string()))
                texts.clear()

    def frame(self) -> pd.DataFrame:
        self.seal_chunk()
        data: dict[str, Any] = {}
        for name in PARSED_COLUMNS:
            if name in self._chunks:
                chunks = self._chunks.pop(name)
                data[name] = pd.array(
                    pa.chunked_array(chunks, type=pa.string()), dtype=DECIMAL_TEXT
                )
            elif name == "is_estimated":
                data[name] = pd.array(self._objects.pop(name), dtype=bool)
            else:
                data[name] = pd.array(self._objects.pop(name), dtype=object)
        return pd.DataFrame(data, columns=list(PARSED_COLUMNS))


def _parse_day(result: dict[str, Any], page_number: int) -> dt.date:
    try:
        return dt.date.fromisoformat(result["TimePeriod"]["Start"][:10])
    except (KeyError, TypeError, ValueError):
        raise ProviderDataError(
            f"Cost Explorer page {page_number} has a result without a valid TimePeriod.Start."
        ) from None


def _parse_group(
    group: dict[str, Any], day: dt.date, estimated: bool, page_number: int
) -> tuple[Any, ...]:
    keys = group.get("Keys")
    if not isinstance(keys, list) or len(keys) != 2:
        raise ProviderDataError(
            f"Cost Explorer page {page_number}, day {day}: expected two group keys "
            f"(SERVICE, USAGE_TYPE), got {len(keys) if isinstance(keys, list) else 'none'}."
        )
    metrics = group.get("Metrics")
    if not isinstance(metrics, dict):
        raise ProviderDataError(f"Cost Explorer page {page_number}, day {day}: no Metrics.")
    currencies = set()
    costs = []
    for metric in CE_COST_METRIC_COLUMNS:
        amount, unit = _parse_metric(metrics, metric, day, page_number)
        costs.append(amount)
        currencies.add(unit)
    if len(currencies) != 1:
        raise ProviderDataError(
            f"Cost Explorer page {page_number}, day {day}: cost metrics disagree on currency "
            f"({', '.join(sorted(currencies))})."
        )
    usage, usage_unit = _parse_metric(metrics, CE_USAGE_METRIC, day, page_number)
    return (day, keys[0], keys[1], *costs, usage, currencies.pop(), usage_unit, estimated)


def _parse_metric(
    metrics: dict[str, Any], metric: str, day: dt.date, page_number: int
) -> tuple[str, str]:
    value = metrics.get(metric)
    if not isinstance(value, dict) or "Amount" not in value:
        raise ProviderDataError(
            f"Cost Explorer page {page_number}, day {day}: metric {metric} is missing."
        )
    try:
        amount = Decimal(str(value["Amount"]))
    except InvalidOperation:
        raise ProviderDataError(
            f"Cost Explorer page {page_number}, day {day}: {metric} amount is not a decimal."
        ) from None
    if not amount.is_finite():
        raise ProviderDataError(
            f"Cost Explorer page {page_number}, day {day}: {metric} amount is not finite."
        )
    return decimal_text(amount), str(value.get("Unit") or "")


@dataclass(frozen=True)
class ParsedTotals:
    """Cost Explorer's ungrouped total per day and currency, and which days are estimated."""

    by_day: dict[tuple[dt.date, str], Decimal]
    estimated_days: frozenset[dt.date]


def parse_total_pages(pages: Iterable[dict[str, Any]], metric: str) -> ParsedTotals:
    """Read ``Total[metric]`` of every ungrouped ResultsByTime entry.

    Raises:
        ProviderDataError: a page does not have the documented shape.
    """
    by_day: dict[tuple[dt.date, str], Decimal] = {}
    estimated: set[dt.date] = set()
    for page_number, page in enumerate(pages, start=1):
        results = page.get("ResultsByTime")
        if not isinstance(results, list):
            raise ProviderDataError(
                f"Cost Explorer page {page_number} has no ResultsByTime list; "
                "the response is malformed. Retry the run; report it if it persists."
            )
        for result in results:
            day = _parse_day(result, page_number)
            if result.get("Estimated", False):
                estimated.add(day)
            total = (result.get("Total") or {}).get(metric)
            if total is None:
                # No cost at all that day: Cost Explorer may leave the total out.
                continue
            try:
                amount = Decimal(str(total["Amount"]))
                currency = str(total["Unit"])
            except (KeyError, InvalidOperation):
                raise ProviderDataError(
                    f"Cost Explorer page {page_number} has a malformed {metric} total for "
                    f"{day}. Retry the run; report it if it persists."
                ) from None
            by_day[(day, currency)] = by_day.get((day, currency), Decimal(0)) + amount
    return ParsedTotals(by_day=by_day, estimated_days=frozenset(estimated))
