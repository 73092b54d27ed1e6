"""Exact amounts as decimal text: how cost frames hold money between the provider and COPY.

A ``Decimal`` object costs about 100 bytes; its text in an Arrow-backed string column about 15.
The text is ``str(Decimal)``, which PostgreSQL's ``numeric`` reads back as exactly that value,
so nothing is rounded on the way.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa

#: The dtype of amount columns that hold decimal text.
DECIMAL_TEXT = pd.ArrowDtype(pa.string())


def decimal_text(amount: Decimal) -> str:
    """The exact text PostgreSQL's ``numeric`` reads back as ``amount``."""
    return str(amount)


def is_decimal_text(column: pd.Series) -> bool:
    """Whether an amount column holds decimal text rather than ``Decimal`` objects."""
    return isinstance(column.dtype, (pd.ArrowDtype, pd.StringDtype))


def as_decimals(column: pd.Series) -> pd.Series:
    """An amount column as ``Decimal`` objects, whatever it held (for sums of a few rows)."""
    return pd.Series(
        [value if isinstance(value, Decimal) else Decimal(str(value)) for value in column],
        index=column.index,
        dtype=object,
    )
