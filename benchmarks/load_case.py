"""One load case, run in its own process so its peak RSS is its own.

``python -m benchmarks.load_case CASE ROWS DATABASE_URL`` prints one JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time
import uuid
from decimal import Decimal

import pandas as pd
import psycopg
import sqlalchemy as sa

from finops_pipeline.constants import COST_COLUMNS
from finops_pipeline.db.cost_loader import replace_cost_window
from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
from finops_pipeline.db.urls import to_libpq_url, to_psycopg_url

TENANT = "bench-tenant"
ACCOUNT = str(uuid.UUID(int=42))
START = dt.date(2025, 1, 1)
GROUPS_PER_DAY = 2_500
CASES = (
    "frame_only",
    "raw_copy",
    "pandas_to_sql",
    "ours_first",
    "ours_unchanged",
    "ours_restated_10pct",
)


def build_rows(count: int) -> pd.DataFrame:
    """``count`` normalised cost rows: one account, GROUPS_PER_DAY rows per day."""
    records = []
    for index in range(count):
        day, group = divmod(index, GROUPS_PER_DAY)
        cost = Decimal(f"{(index * 7919) % 100000 / 1000 + 0.0001:.10f}")
        records.append(
            (
                TENANT,
                ACCOUNT,
                START + dt.timedelta(days=day),
                "aws",
                f"Service {group % 60}",
                f"USW2-UsageType-{group}",
                cost,
                cost,
                cost * Decimal("0.97"),
                Decimal(group),
                "USD",
                "Hrs",
                False,
            )
        )
    return pd.DataFrame.from_records(records, columns=list(COST_COLUMNS))


def _window(rows: pd.DataFrame) -> dict[str, object]:
    return {
        "tenant_id": TENANT,
        "cloud_account_id": ACCOUNT,
        "provider": "aws",
        "start": rows["date"].min(),
        "end_inclusive": rows["date"].max(),
    }


def run(case: str, count: int, url: str) -> dict[str, object]:
    rows = build_rows(count)
    seconds = 0.0
    if case == "raw_copy":
        with psycopg.connect(to_libpq_url(url), autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS bench_copy")
            connection.execute("CREATE TABLE bench_copy (LIKE cost_data INCLUDING ALL)")
            started = time.perf_counter()
            with connection.transaction(), connection.cursor() as cursor:
                columns = ", ".join(COST_COLUMNS)
                with cursor.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
                    for record in rows.itertuples(index=False, name=None):
                        copy.write_row(record)
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
        engine = create_finops_engine(url)
        with psycopg_connection(engine) as connection:
            connection.execute("TRUNCATE cost_data")
            if case != "ours_first":
                replace_cost_window(connection, rows, **_window(rows), run_id="preload")
                connection.execute("VACUUM ANALYZE cost_data")
            load = rows
            if case == "ours_restated_10pct":
                load = rows.copy()
                changed = load.index % 10 == 0
                load.loc[changed, "unblended_cost"] = [
                    value + Decimal("0.01") for value in load.loc[changed, "unblended_cost"]
                ]
            started = time.perf_counter()
            stats = replace_cost_window(connection, load, **_window(rows), run_id="bench")
            seconds = time.perf_counter() - started
            expected_restated = int((load.index % 10 == 0).sum()) if "restated" in case else 0
            if stats.rows_in_window != count or stats.restated != expected_restated:
                raise SystemExit(f"{case}: unexpected load result {stats}")
            connection.execute("TRUNCATE cost_data")
        engine.dispose()
    elif case != "frame_only":
        raise SystemExit(f"unknown case {case}; choose from {', '.join(CASES)}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": case, "rows": count, "seconds": seconds, "peak_rss_mb": peak_kb / 1024}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
