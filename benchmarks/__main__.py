"""``python -m benchmarks [--size tiny|full]``: run every benchmark, print and save the table."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import dagster as dg

from benchmarks.anomalies import run_anomalies
from benchmarks.bookkeeping import run_bookkeeping
from benchmarks.collect import run_collect
from benchmarks.common import SIZES, scratch_database, server_url, write_results
from benchmarks.daemon import run_daemon_end_to_end
from benchmarks.load import run_load
from benchmarks.pipeline import run_end_to_end, run_requests
from benchmarks.schedule_tick import run_schedule_tick
from finops_pipeline.db.urls import redact_url

BENCHMARKS = [
    "load",
    "collect",
    "requests",
    "e2e",
    "bookkeeping",
    "schedule",
    "daemon",
    "anomalies",
]
#: The benchmarks that need a database; the others run on generated data alone.
_DATABASE_BENCHMARKS = frozenset({"load", "requests", "e2e", "bookkeeping", "schedule", "daemon"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument(
        "--only",
        choices=BENCHMARKS,
        action="append",
        help="Run only these benchmarks (repeat); default all.",
    )
    parser.add_argument("--output", type=Path, help="Results path without suffix.")
    parser.add_argument("--e2e-accounts", type=int, help="Override the size's K accounts.")
    parser.add_argument("--e2e-days", type=int, help="Override the size's D days.")
    parser.add_argument(
        "--daemon-accounts", type=int, help="Override the daemon benchmark's K accounts."
    )
    parser.add_argument("--daemon-days", type=int, help="Override the daemon benchmark's D days.")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    size = replace(
        size,
        e2e_accounts=args.e2e_accounts or size.e2e_accounts,
        e2e_days=args.e2e_days or size.e2e_days,
        daemon_accounts=args.daemon_accounts or size.daemon_accounts,
        daemon_days=args.daemon_days or size.daemon_days,
    )
    selected = set(args.only or BENCHMARKS)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    logging.getLogger("dagster").setLevel(logging.WARNING)

    started = time.perf_counter()
    tables = []
    if selected & _DATABASE_BENCHMARKS:
        server = server_url()
        print(f"benchmarks, size {size.name}, server {redact_url(server)}", flush=True)
        with scratch_database(server) as url:
            if "load" in selected:
                tables.append(run_load(url, size.load_rows))
            if "requests" in selected:
                tables.append(run_requests(url, size.request_days))
            if "e2e" in selected:
                tables.append(run_end_to_end(url, size.e2e_accounts, size.e2e_days))
            if "bookkeeping" in selected:
                tables.append(
                    run_bookkeeping(url, server, size.bookkeeping_accounts, size.bookkeeping_days)
                )
            if "schedule" in selected:
                tables.append(run_schedule_tick(url, size.schedule_accounts))
            if "daemon" in selected and size.daemon_accounts:
                tables.append(
                    run_daemon_end_to_end(url, server, size.daemon_accounts, size.daemon_days)
                )
    else:
        print(f"benchmarks, size {size.name}, no database needed", flush=True)
    if "collect" in selected:
        tables.append(run_collect(size.collect_groups))
    if "anomalies" in selected:
        tables.append(
            run_anomalies(
                size.anomaly_accounts,
                size.anomaly_days,
                select_spiky=size.anomaly_spiky_accounts,
            )
        )
    print()
    for table in tables:
        print(table.render())
        print()
    path = write_results(size.name, tables, args.output)
    print(f"total {time.perf_counter() - started:.1f} s; results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
