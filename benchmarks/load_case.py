"""One load case, run in its own process so its peak RSS is its own.

``python -m benchmarks.load_case CASE ROWS DATABASE_URL`` prints one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from decimal import Decimal

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from benchmarks.common import peak_rss_mb
from benchmarks.main_loader import build_decimal_rows
from benchmarks.main_loader import replace_cost_window as main_replace_cost_window
from finops_pipeline.constants import COST_COLUMNS
from finops_pipeline.db.cost_loader import csv_batch, replace_cost_window
from finops_pipeline.db.urls import to_libpq_url, to_psycopg_url
from finops_pipeline.providers.aws.parsing import PARSED_COLUMNS
from finops_pipeline.sync.amounts import DECIMAL_TEXT
from finops_pipeline.sync.memory import return_freed_memory_to_os
from finops_pipeline.sync.normalise import normalise_cost_rows

TENANT = "bench-tenant"
ACCOUNT = str(uuid.UUID(int=42))
START = dt.date(2025, 1, 1)
GROUPS_PER_DAY = 2_500
CASES = (
    "frame_only",
    "raw_copy",
    "raw_copy_csv",
    "pandas_to_sql",
    "ours_first",
    "ours_unchanged",
    "ours_restated_tail",
    "ours_restated_10pct",
    "main_unchanged",
    "main_restated_10pct",
)


def build_rows(count: int) -> pd.DataFrame:
    """``count`` normalised cost rows: one account, GROUPS_PER_DAY rows per day.

    Built the way the pipeline holds them: a frame shaped as the Cost Explorer parser returns
    it (amounts as exact decimal text in Arrow, names and days shared), then normalised. The
    values are made with vectorised Arrow compute so the builder's own garbage does not count
    in the peak RSS. ``unblended_cost`` has 10 decimal places, ``net_unblended_cost`` 12.
    """
    index = np.arange(count, dtype=np.int64)
    day, group = np.divmod(index, GROUPS_PER_DAY)
    days = np.array(
        [START + dt.timedelta(days=offset) for offset in range(int(day.max(initial=0)) + 1)],
        dtype=object,
    )
    services = np.array([f"Service {g % 60}" for g in range(GROUPS_PER_DAY)], dtype=object)
    usage_types = np.array([f"USW2-UsageType-{g}" for g in range(GROUPS_PER_DAY)], dtype=object)
    ten_thousandths = (index * 7919) % 100_000 * 10 + 1  # the cost in units of 0.0001
    del index
    columns = {
        "date": days[day],
        "service": services[group],
        "usage_type": usage_types[group],
        "unblended_cost": _decimal_text(ten_thousandths, 4, "000000"),
        "net_unblended_cost": _decimal_text(ten_thousandths * 97, 6, "000000"),  # x 0.97
        "usage_quantity": pd.array(pc.cast(pa.array(group), pa.string()), dtype=DECIMAL_TEXT),
        "currency": np.array(["USD"], dtype=object)[np.zeros(count, dtype=np.intp)],
        "usage_unit": np.array(["Hrs"], dtype=object)[np.zeros(count, dtype=np.intp)],
        "is_estimated": np.zeros(count, dtype=bool),
    }
    columns["amortized_cost"] = columns["unblended_cost"]
    del day, group, ten_thousandths
    parsed = pd.DataFrame(columns, columns=list(PARSED_COLUMNS), copy=False)
    del columns
    return normalise_cost_rows(parsed, tenant_id=TENANT, cloud_account_id=ACCOUNT, provider="aws")


def _decimal_text(units: np.ndarray, places: int, suffix: str) -> pd.api.extensions.ExtensionArray:
    """``units / 10**places`` as decimal text, with ``suffix`` digits appended."""
    whole = pc.cast(pa.array(units // 10**places), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(units % 10**places), pa.string()), places, "0")
    text = pc.binary_join_element_wise(
        whole, pc.binary_join_element_wise(fraction, suffix, ""), "."
    )
    return pd.array(text, dtype=DECIMAL_TEXT)


def _window(rows: pd.DataFrame) -> dict[str, object]:
    return {
        "tenant_id": TENANT,
        "cloud_account_id": ACCOUNT,
        "provider": "aws",
        "start": rows["date"].min(),
        "end_inclusive": rows["date"].max(),
    }


def run(case: str, count: int, url: str) -> dict[str, object]:
    # As collect_costs does at the start of every pipeline run.
    if case.startswith("main_"):
        return _run_main(case, count, url)
    return_freed_memory_to_os()
    rows = build_rows(count)
    seconds = 0.0
    extra: dict[str, object] = {}
    if case in ("raw_copy", "raw_copy_csv"):
        with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS bench_copy")
            connection.execute("CREATE TABLE bench_copy (LIKE cost_data INCLUDING ALL)")
            started = time.perf_counter()
            with connection.transaction(), connection.cursor() as cursor:
                columns = ", ".join(COST_COLUMNS)
                if case == "raw_copy":
                    with cursor.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
                        for record in rows.itertuples(index=False, name=None):
                            copy.write_row(record)
                else:
                    statement = f"COPY bench_copy ({columns}) FROM STDIN (FORMAT csv)"
                    with cursor.copy(statement) as copy:
                        for offset in range(0, len(rows), 50_000):
                            copy.write(csv_batch(rows.iloc[offset : offset + 50_000], run_id=None))
            seconds = time.perf_counter() - started
            connection.execute("DROP TABLE bench_copy")
    elif case == "pandas_to_sql":
        engine = sa.create_engine(to_psycopg_url(url), poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS bench_to_sql")
            connection.exec_driver_sql("CREATE TABLE bench_to_sql (LIKE cost_data INCLUDING ALL)")
        # pandas types object columns as text; Postgres refuses varchar for the uuid column.
        types: dict[str, sa.types.TypeEngine] = {
            "cloud_account_id": sa.Uuid(as_uuid=False),
            "date": sa.Date(),
            "is_estimated": sa.Boolean(),
            **{
                column: sa.Numeric()
                for column in (
                    "unblended_cost",
                    "amortized_cost",
                    "net_unblended_cost",
                    "usage_quantity",
                )
            },
        }
        started = time.perf_counter()
        rows.to_sql("bench_to_sql", engine, if_exists="append", index=False, dtype=types)
        seconds = time.perf_counter() - started
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE bench_to_sql")
        engine.dispose()
    elif case.startswith("ours"):
        load, expected_changed = _restated(case, rows)
        with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
            connection.execute("TRUNCATE cost_data, cost_data_days")
            if case != "ours_first":
                replace_cost_window(connection, rows, **_window(rows), run_id="preload")
                # Resets n_dead_tup, so what is read afterwards is this load's alone.
                connection.execute("VACUUM ANALYZE cost_data")
            started = time.perf_counter()
            stats = replace_cost_window(connection, load, **_window(rows), run_id="bench")
            seconds = time.perf_counter() - started
        if stats.rows_in_window != count or stats.restated != expected_changed:
            raise SystemExit(f"{case}: unexpected load result {stats}")
        # The loading backend has exited, so its statistics are flushed.
        with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
            dead_tuples = _dead_tuples(connection)
            connection.execute("TRUNCATE cost_data, cost_data_days")
        extra = {
            "rows_changed": expected_changed,
            "dead_tuples": dead_tuples,
            "days_written": stats.days_written,
        }
    elif case != "frame_only":
        raise SystemExit(f"unknown case {case}; choose from {', '.join(CASES)}")
    return {
        "case": case,
        "rows": count,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        **extra,
    }


def _run_main(case: str, count: int, url: str) -> dict[str, object]:
    """Main's loader on main's frame of Decimals: the before of the same run."""
    rows = build_decimal_rows(
        count, tenant=TENANT, account=ACCOUNT, start=START, groups_per_day=GROUPS_PER_DAY
    )
    load, expected_changed = _restated(case.replace("main_", "ours_"), rows)
    with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
        connection.execute("TRUNCATE cost_data, cost_data_days")
        main_replace_cost_window(connection, rows, **_window(rows), run_id="preload")
        connection.execute("VACUUM ANALYZE cost_data")
        started = time.perf_counter()
        stats = main_replace_cost_window(connection, load, **_window(rows), run_id="bench")
        seconds = time.perf_counter() - started
    if stats.rows_in_window != count or stats.restated != expected_changed:
        raise SystemExit(f"{case}: unexpected load result {stats}")
    with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
        dead_tuples = _dead_tuples(connection)
        connection.execute("TRUNCATE cost_data, cost_data_days")
    return {
        "case": case,
        "rows": count,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rows_changed": expected_changed,
        "dead_tuples": dead_tuples,
    }


def _restated(case: str, rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows a case loads over the preloaded ``rows``, and how many of them changed."""
    if case == "ours_restated_10pct":
        changed = rows.index % 10 == 0  # spread over every day
    elif case == "ours_restated_tail":
        days = sorted(rows["date"].unique())
        changed = rows["date"] >= days[len(days) - max(1, len(days) // 10)]
    else:
        return rows, 0
    load = rows.copy()
    restated = [Decimal(value) + Decimal("0.01") for value in load.loc[changed, "unblended_cost"]]
    if load["unblended_cost"].dtype == object:  # main's frame of Decimals
        load.loc[changed, "unblended_cost"] = pd.Series(restated, dtype=object).to_numpy()
    else:
        load.loc[changed, "unblended_cost"] = pd.array(
            [str(v) for v in restated], dtype=DECIMAL_TEXT
        )
    return load, int(changed.sum())


def _dead_tuples(connection: psycopg.Connection) -> int:
    for _ in range(50):
        row = connection.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'cost_data'"
        ).fetchone()
        if row is not None:
            return int(row[0])
        time.sleep(0.1)
    return -1


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
