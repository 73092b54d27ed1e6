"""Normalising provider rows into ``cost_data`` rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from finops_pipeline.constants import COST_COLUMNS, COST_KEY_COLUMNS
from finops_pipeline.errors import ProviderDataError

UNSPECIFIED = "(unspecified)"
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
    """
    frame = parsed.copy()
    frame["tenant_id"] = tenant_id
    frame["cloud_account_id"] = cloud_account_id
    frame["provider"] = provider
    for column in ("service", "usage_type"):
        names = frame[column].astype("string").str.strip().fillna("")
        frame[column] = names.mask(names == "", UNSPECIFIED).astype(object)
    frame["currency"] = frame["currency"].astype("string").str.strip().str.upper().astype(object)
    units = frame["usage_unit"].astype("string").str.strip().fillna("")
    frame["usage_unit"] = units.astype(object).where(~units.isin(_NO_UNIT), None)
    frame["is_estimated"] = frame["is_estimated"].astype(bool)
    frame = frame[list(COST_COLUMNS)]
    if frame.duplicated(subset=list(COST_KEY_COLUMNS)).any():
        frame = _merge_duplicate_keys(frame)
    return frame.reset_index(drop=True)


def _merge_duplicate_keys(frame: pd.DataFrame) -> pd.DataFrame:
    keys = list(COST_KEY_COLUMNS)
    currencies = frame.groupby(keys, sort=False)["currency"].nunique()
    if (currencies > 1).any():
        raise ProviderDataError(
            "Cost Explorer returned one service and usage type in two currencies on the same day; "
            "cost_data holds one currency per key. Report this account's billing setup."
        )
    aggregations: dict[str, str | object] = {column: "sum" for column in _AMOUNT_COLUMNS}
    aggregations.update({"currency": "first", "usage_unit": "first", "is_estimated": "any"})
    merged = frame.groupby(keys, sort=False, as_index=False).agg(aggregations)
    return merged[list(COST_COLUMNS)]


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
