"""One account's window, loaded with the facts the data-quality checks need, atomically.

The rows (``cost_loader.replace_cost_window``), the day markers (``cost_data_days``) and the
provider's own daily totals (``cost_provider_totals``) of a window commit together or not at
all, so a marker always describes the rows its load left and a provider total always belongs
to the rows it is compared with.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg

from finops_pipeline.db.cost_loader import WindowLoadStats, replace_cost_window
from finops_pipeline.db.quality import record_loaded_days, record_provider_totals
from finops_pipeline.errors import DatabaseConnectionLostError, DatabaseError, FinopsError
from finops_pipeline.providers.base import ProviderTotals


def load_window(
    connection: psycopg.Connection,
    rows: pd.DataFrame,
    *,
    tenant_id: str,
    cloud_account_id: str,
    provider: str,
    start: dt.date,
    end_inclusive: dt.date,
    run_id: str | None,
    totals: ProviderTotals | None = None,
) -> WindowLoadStats:
    """Replace the window's rows, mark its days, and store the provider's totals, in one
    transaction.

    Raises:
        DatabaseConnectionLostError: The connection dropped; nothing changed.
        DatabaseError: The load failed; nothing in the window changed.
    """
    try:
        with connection.transaction():
            load = replace_cost_window(
                connection,
                rows,
                tenant_id=tenant_id,
                cloud_account_id=cloud_account_id,
                provider=provider,
                start=start,
                end_inclusive=end_inclusive,
                run_id=run_id,
            )
            record_loaded_days(
                connection,
                tenant_id=tenant_id,
                cloud_account_id=cloud_account_id,
                start=start,
                end_inclusive=end_inclusive,
                run_id=run_id,
            )
            if totals is not None:
                record_provider_totals(
                    connection,
                    tenant_id=tenant_id,
                    cloud_account_id=cloud_account_id,
                    provider=provider,
                    start=start,
                    end_inclusive=end_inclusive,
                    totals=totals,
                    run_id=run_id,
                )
    except FinopsError:
        raise
    except psycopg.Error as error:
        if connection.broken:
            raise DatabaseConnectionLostError(
                f"The connection to PostgreSQL was lost while loading {start}..{end_inclusive} "
                f"for account {cloud_account_id} ({type(error).__name__}); the window was rolled "
                "back and its old rows are intact. Re-run once the database is reachable."
            ) from error
        raise DatabaseError(
            f"Recording {start}..{end_inclusive} for account {cloud_account_id} failed "
            f"({type(error).__name__}); the window was rolled back and its old rows are intact. "
            "Check the database and re-run the partitions."
        ) from error
    return load
