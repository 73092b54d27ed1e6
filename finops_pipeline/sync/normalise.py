"""Normalising provider rows into ``cost_data`` rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from finops_pipeline.constants import COST_COLUMNS, COST_KEY_COLUMNS
from finops_pipeline.errors import ProviderDataError
from finops_pipeline.sync.amounts import as_decimals, decimal_text, is_decimal_text

UNSPECIFIED = "(unspecified)"
_VARYING_KEY_COLUMNS = ["date", "service", "usage_type"]
_AMOUNT_COLUMNS = ("unblended_cost", "amortized_cost", "net_unblended_cost", "usage_quantity")
# Cost Explorer reports "N/A" as the unit of usage types that have no single unit.
_NO_UNIT = frozenset({"", "N/A", "NA", "None"})


def normalise_cost_rows(
    parsed: pd.DataFrame,
    *,
    tenant_id: str,
    cloud_account_id: str,
    provider: str,
) -> pd.DataFrame:
    """Return ``cost_data`` rows in :data:`COST_COLUMNS` order, unique on the key.

    Names are trimmed (empty becomes ``(unspecified)``), currency codes are upper-cased, units
    without meaning become NULL, and rows that collapse onto the same key are summed. Summing
    needs one currency per key; two currencies for one key raise :class:`ProviderDataError`.
    Amount columns keep their representation (decimal text or ``Decimal`` objects).
    """
    # No deep copy: pandas copies on write, and a 1M-row frame is a few hundred MB.
    frame = parsed.copy(deep=False)
    for name, value in (
        ("tenant_id", tenant_id),
        ("cloud_account_id", cloud_account_id),
        ("provider", provider),
    ):
        # One shared object for every row (8 bytes a row); np.full would copy the text.
        frame[name] = pd.Series(value, index=frame.index, dtype=object)
    for column in ("service", "usage_type"):
        frame[column] = _map_distinct(frame[column], _name)
    frame["currency"] = _map_distinct(frame["currency"], _currency)
    frame["usage_unit"] = _map_distinct(frame["usage_unit"], _unit)
    frame["is_estimated"] = frame["is_estimated"].astype(bool)
    frame = frame[list(COST_COLUMNS)]
    # Tenant, account and provider were just set alike on every row, so the rest of the key
    # decides; hashing three columns, not six, matters on a million rows.
    if frame.duplicated(subset=_VARYING_KEY_COLUMNS).any():
        frame = _merge_duplicate_keys(frame)
    return frame.reset_index(drop=True)


def _map_distinct(column: pd.Series, clean: Callable[[object], object]) -> pd.Series:
    """``clean`` applied once per distinct value; rows share the cleaned objects."""
    codes, distinct = pd.factorize(column, use_na_sentinel=True)
    # The extra last entry is what a missing value becomes (code -1).
    cleaned = np.array([*(clean(value) for value in distinct), clean(None)], dtype=object)
    return pd.Series(cleaned[codes], index=column.index, dtype=object)


def _text(value: object) -> str:
    return "" if value is None or value is pd.NA else str(value).strip()


def _name(value: object) -> str:
    return _text(value) or UNSPECIFIED


def _currency(value: object) -> str | None:
    return None if value is None or value is pd.NA else _text(value).upper()


def _unit(value: object) -> str | None:
    text = _text(value)
    return None if text in _NO_UNIT else text


def _merge_duplicate_keys(frame: pd.DataFrame) -> pd.DataFrame:
    keys = list(COST_KEY_COLUMNS)
    collapsed = frame.duplicated(subset=keys, keep=False)
    duplicates = frame[collapsed].copy()
    currencies = duplicates.groupby(keys, sort=False)["currency"].nunique()
    if (currencies > 1).any():
        raise ProviderDataError(
            "Cost Explorer returned one service and usage type in two currencies on the same day; "
            "cost_data holds one currency per key. Report this account's billing setup."
        )
    for column in _AMOUNT_COLUMNS:
        duplicates[column] = as_decimals(duplicates[column])
    aggregations: dict[str, str | object] = {column: "sum" for column in _AMOUNT_COLUMNS}
    aggregations.update({"currency": "first", "usage_unit": "first", "is_estimated": "any"})
    merged = duplicates.groupby(keys, sort=False, as_index=False).agg(aggregations)
    for column in _AMOUNT_COLUMNS:
        if is_decimal_text(frame[column]):
            merged[column] = merged[column].map(decimal_text).astype(frame[column].dtype)
    return pd.concat([frame[~collapsed], merged[list(COST_COLUMNS)]], ignore_index=True)


def check_rows_within_window(frame: pd.DataFrame, start: dt.date, end_inclusive: dt.date) -> None:
    """Refuse rows outside the window being replaced, which would escape its delete."""
    if frame.empty:
        return
    outside = frame[(frame["date"] < start) | (frame["date"] > end_inclusive)]
    if not outside.empty:
        raise ProviderDataError(
            f"The provider returned {len(outside)} rows outside {start}..{end_inclusive}; "
            "nothing was loaded. Report this with the run id."
        )
