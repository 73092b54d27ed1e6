"""Per-day digests: order-free, type-free, and sensitive to every value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from finops_pipeline.db.cost_digests import day_digests
from tests.db.test_cost_loader import START, frame


def _digests(rows: pd.DataFrame, days: int = 3) -> dict:
    return day_digests(
        rows, provider="aws", start=START, end_inclusive=START + dt.timedelta(days=days - 1)
    )


def test_row_order_and_decimal_or_text_amounts_give_the_same_digests() -> None:
    rows = frame(3)
    as_text = rows.sample(frac=1.0, random_state=7).reset_index(drop=True)
    for column in ("unblended_cost", "amortized_cost", "net_unblended_cost", "usage_quantity"):
        as_text[column] = as_text[column].map(str).astype("string")
    assert _digests(rows) == _digests(as_text)


def test_every_value_and_each_day_on_its_own_changes_the_digest() -> None:
    base = _digests(frame(3))
    for column, value in (
        ("unblended_cost", Decimal("1E-12")),
        ("usage_quantity", Decimal("-1")),
        ("currency", "EUR"),
        ("usage_unit", None),
        ("is_estimated", True),
        ("service", "other"),
    ):
        rows = frame(3)
        rows.loc[4, column] = value  # row 4 is on the second day
        changed = _digests(rows)
        assert changed[START] == base[START]
        assert changed[START + dt.timedelta(days=1)] != base[START + dt.timedelta(days=1)], column


def test_days_without_rows_get_a_zero_count_digest() -> None:
    digests = _digests(frame(1), days=2)
    assert digests[START + dt.timedelta(days=1)].row_count == 0
    assert digests[START].row_count == 3
