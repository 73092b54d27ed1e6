"""Parsing Cost Management Query responses into the project's rows, with exact decimals.

The service sends amounts as JSON numbers and the SDK's models turn them into floats, so pages
are parsed here from the raw response text with ``json.loads(text, parse_float=Decimal)``: an
amount never passes through ``float``. Columns are found by name, never by position.

**Merging the two queries.** A range is queried twice, as ``ActualCost`` and ``AmortizedCost``,
and the rows are merged per (day, ServiceName, Meter):

* ``unblended_cost`` is the actual cost and ``amortized_cost`` the amortized cost. A key present
  in only one of them gets 0 on the other side: a reservation purchase exists only in
  ``ActualCost`` (on the day it was bought), and the usage it covers costs 0 there while
  ``AmortizedCost`` carries its share.
* ``net_unblended_cost`` is the actual cost too. The Query API's cost is already net of
  negotiated and commitment discounts, and it offers no second, credit-adjusted amount: credits
  and Azure Prepayment are applied on the invoice, not on daily rows.
* ``usage_quantity`` is the actual side's ``UsageQuantity`` (the amortized side's when only it
  has the key); the two agree for usage rows.
* ``usage_unit`` is NULL: the unit (``UnitOfMeasure``) would need a third grouping, and the API
  allows two.
* ``is_estimated``: Azure restates costs until about the 5th of the next month, so every day of
  a month that had not closed at the pull is estimated (:func:`is_estimated_day`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.providers.azure.query import DEFAULT_GROUPING, USAGE_QUANTITY_COLUMN
from finops_pipeline.providers.base import PARSED_COLUMNS, ParsedCosts

#: Names the service gives the cost amount, in order of preference.
COST_COLUMNS: tuple[str, ...] = ("Cost", "PreTaxCost")
USAGE_DATE_COLUMN = "UsageDate"
CURRENCY_COLUMN = "Currency"
#: A month's costs can still change until this day of the following month.
MONTH_CLOSE_DAY = 5
_ZERO = Decimal(0)


@dataclass(frozen=True)
class QueryPage:
    """One page of a Query response: its column names, rows and the link to the next page."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    next_link: str | None

    @classmethod
    def empty(cls) -> QueryPage:
        return cls(columns=(), rows=(), next_link=None)


@dataclass(frozen=True)
class CostRecord:
    """One group's cost and usage on one day, as one query reported it."""

    day: dt.date
    service: str
    meter: str
    cost: Decimal
    usage_quantity: Decimal
    currency: str


def parse_query_page(text: str | bytes | None, *, status: int = 200) -> QueryPage:
    """Parse one response body. A 204 or an empty body is a valid page with no rows.

    Raises:
        ProviderDataError: the body is not a Query result.
    """
    if status == 204 or text is None or not text.strip():
        return QueryPage.empty()
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError:
        raise ProviderDataError(
            "Cost Management returned a body that is not JSON; retry the run, and report it "
            "if it persists."
        ) from None
    if not isinstance(document, dict):
        raise ProviderDataError("Cost Management returned JSON that is not a Query result.")
    properties = document.get("properties")
    if properties is None:
        return QueryPage.empty()
    if not isinstance(properties, dict):
        raise ProviderDataError("Cost Management returned a Query result without properties.")
    columns = properties.get("columns") or []
    rows = properties.get("rows") or []
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise ProviderDataError("Cost Management returned columns or rows that are not lists.")
    names: list[str] = []
    for column in columns:
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            raise ProviderDataError("Cost Management returned a column without a name.")
        names.append(column["name"])
    parsed_rows: list[tuple[Any, ...]] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != len(names):
            raise ProviderDataError(
                f"Cost Management returned a row with {len(row) if isinstance(row, list) else 0} "
                f"values for {len(names)} columns."
            )
        parsed_rows.append(tuple(row))
    next_link = properties.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise ProviderDataError("Cost Management returned a nextLink that is not a string.")
    return QueryPage(columns=tuple(names), rows=tuple(parsed_rows), next_link=next_link or None)


def column_index(columns: Sequence[str], *candidates: str) -> int:
    """Where the first of ``candidates`` is among ``columns`` (case-insensitive)."""
    folded = [name.casefold() for name in columns]
    for candidate in candidates:
        if candidate.casefold() in folded:
            return folded.index(candidate.casefold())
    raise ProviderDataError(
        f"Cost Management's response has no {' or '.join(candidates)} column "
        f"(it has: {', '.join(columns) or 'none'}). Report this with the run id."
    )


def parse_usage_date(value: object) -> dt.date:
    """``UsageDate`` arrives as an integer such as 20240101."""
    text = str(value)
    if isinstance(value, bool) or not (isinstance(value, int | str) and len(text) == 8):
        raise ProviderDataError(f"UsageDate {value!r} is not a YYYYMMDD number.")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ProviderDataError(f"UsageDate {value!r} is not a valid date.") from None


def _amount(value: object, column: str) -> Decimal:
    if isinstance(value, bool):
        raise ProviderDataError(f"{column} value {value!r} is not a number.")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif value is None:
        return _ZERO
    else:
        # A float here would mean the text was parsed without parse_float=Decimal.
        raise ProviderDataError(f"{column} value {value!r} is not an exact JSON number.")
    if not amount.is_finite():
        raise ProviderDataError(f"{column} value {value!r} is not finite.")
    return amount


def read_cost_records(
    page: QueryPage, *, grouping: Sequence[str] = DEFAULT_GROUPING
) -> list[CostRecord]:
    """The page's rows as records; ``grouping[0]`` is the service, ``grouping[1]`` the meter
    (both blank for an ungrouped query)."""
    if not page.rows:
        return []
    cost_at = column_index(page.columns, *COST_COLUMNS)
    date_at = column_index(page.columns, USAGE_DATE_COLUMN)
    currency_at = column_index(page.columns, CURRENCY_COLUMN)
    service_at = column_index(page.columns, grouping[0]) if grouping else None
    meter_at = column_index(page.columns, grouping[1]) if len(grouping) > 1 else None
    try:
        usage_at: int | None = column_index(page.columns, USAGE_QUANTITY_COLUMN)
    except ProviderDataError:
        usage_at = None
    cost_name = page.columns[cost_at]
    days: dict[object, dt.date] = {}
    records = []
    for row in page.rows:
        currency = row[currency_at]
        if not isinstance(currency, str) or not currency.strip():
            raise ProviderDataError(f"Currency {currency!r} is not a currency code.")
        usage_date = row[date_at]
        day = days.get(usage_date) if isinstance(usage_date, int | str) else None
        if day is None:
            day = parse_usage_date(usage_date)
            days[usage_date] = day
        records.append(
            CostRecord(
                day=day,
                service=_name(row[service_at]) if service_at is not None else "",
                meter=_name(row[meter_at]) if meter_at is not None else "",
                cost=_amount(row[cost_at], cost_name),
                usage_quantity=(
                    _amount(row[usage_at], USAGE_QUANTITY_COLUMN) if usage_at is not None else _ZERO
                ),
                currency=currency.strip().upper(),
            )
        )
    return records


def _name(value: object) -> str:
    return "" if value is None else str(value)


# --- estimation and merging ----------------------------------------------------------------


def month_closes_on(day: dt.date, *, close_day: int = MONTH_CLOSE_DAY) -> dt.date:
    """The last day ``day``'s month can still change: the ``close_day`` of the next month."""
    following = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following.replace(day=close_day)


def is_estimated_day(day: dt.date, as_of: dt.date, *, close_day: int = MONTH_CLOSE_DAY) -> bool:
    """Whether ``day``'s costs may still change when read on ``as_of`` (UTC)."""
    return as_of <= month_closes_on(day, close_day=close_day)


_Key = tuple[dt.date, str, str]


def _index(records: Iterable[CostRecord], cost_type: str) -> dict[_Key, CostRecord]:
    indexed: dict[_Key, CostRecord] = {}
    for record in records:
        key = (record.day, record.service, record.meter)
        if key in indexed:
            raise ProviderDataError(
                f"Cost Management's {cost_type} rows repeat {record.service} / {record.meter} "
                f"on {record.day}; nothing was loaded. Report this with the run id."
            )
        indexed[key] = record
    return indexed


def merge_cost_types(
    actual: Iterable[CostRecord],
    amortized: Iterable[CostRecord],
    *,
    days: Iterable[dt.date],
    as_of: dt.date,
    close_day: int = MONTH_CLOSE_DAY,
) -> ParsedCosts:
    """One row per (day, service, meter) from the two queries; see the module docstring.

    Args:
        actual: Records of the ``ActualCost`` query.
        amortized: Records of the ``AmortizedCost`` query.
        days: Every day that was queried, reported or not.
        as_of: The UTC day the data was read, for ``is_estimated``.
        close_day: The day of the next month until which a month may still change.

    Raises:
        ProviderDataError: a key repeats within one query, or the two disagree on currency.
    """
    actual_by_key = _index(actual, "ActualCost")
    amortized_by_key = _index(amortized, "AmortizedCost")
    estimated_by_day = {day: is_estimated_day(day, as_of, close_day=close_day) for day in days}
    records: list[tuple[Any, ...]] = []
    for key in sorted(actual_by_key.keys() | amortized_by_key.keys()):
        day, service, meter = key
        billed = actual_by_key.get(key)
        spread = amortized_by_key.get(key)
        if billed is not None and spread is not None and billed.currency != spread.currency:
            raise ProviderDataError(
                f"ActualCost and AmortizedCost disagree on the currency of {service} / {meter} "
                f"on {day} ({billed.currency}, {spread.currency}). Report this with the run id."
            )
        either = billed if billed is not None else spread
        assert either is not None
        unblended = billed.cost if billed is not None else _ZERO
        records.append(
            (
                day,
                service,
                meter,
                unblended,
                spread.cost if spread is not None else _ZERO,
                unblended,
                either.usage_quantity,
                either.currency,
                None,
                estimated_by_day[day]
                if day in estimated_by_day
                else is_estimated_day(day, as_of, close_day=close_day),
            )
        )
    frame = pd.DataFrame.from_records(records, columns=list(PARSED_COLUMNS))
    frame["is_estimated"] = frame["is_estimated"].astype(bool)
    return ParsedCosts(frame=frame, estimated_by_day=estimated_by_day)
