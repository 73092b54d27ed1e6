"""Runs per day: the daily schedule's tick at many accounts, grouped against one run each."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import dagster as dg

from benchmarks.account_sensor_tick import insert_accounts
from benchmarks.common import Table
from finops_pipeline.config import DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.resources import PostgresResource
from finops_pipeline.schedules import daily_cost_sync_requests
from finops_pipeline.sync.windows import SyncPolicy

Progress = Callable[[str], Any]

#: Seconds of process start and run bookkeeping per daemon-launched run, measured on this
#: machine kind (FIELD-NOTES: 10-18 s); the projection uses the middle.
DAEMON_SECONDS_PER_RUN = 14.0


def run_schedule_tick(url: str, accounts: int, progress: Progress = print) -> Table:
    """One schedule tick over ``accounts`` active accounts, grouped and one run per account."""
    ids = insert_accounts(url, accounts, tenant="schedule")
    postgres = PostgresResource(database_url=url)
    # Mid-month, so only the restatement window is planned (no previous-month re-pull).
    today = dt.date.today().replace(day=15)
    table = Table(
        f"Runs per day: the daily schedule's tick at {accounts:,} active accounts",
        [
            "case",
            "accounts per run",
            "runs requested",
            "tick s",
            "projected daemon h/day",
            "x one run per account",
        ],
    )
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
        results = []
        for label, per_run in (
            ("one run per account (before)", 1),
            ("grouped by provider and window (ours)", DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN),
        ):
            started = time.perf_counter()
            requests = daily_cost_sync_requests(
                today, SyncPolicy(), postgres, instance, accounts_per_run=per_run
            )
            seconds = time.perf_counter() - started
            results.append((label, per_run, len(requests), seconds))
            progress(f"  schedule: {per_run} per run, {len(requests)} runs, {seconds:.2f} s")
    baseline_hours = results[0][2] * DAEMON_SECONDS_PER_RUN / 3600
    for label, per_run, runs, seconds in results:
        hours = runs * DAEMON_SECONDS_PER_RUN / 3600
        table.rows.append(
            [
                label,
                per_run,
                runs,
                round(seconds, 2),
                round(hours, 2),
                round(hours / baseline_hours, 3),
            ]
        )
    table.notes.append(
        f"Projected daemon time counts {DAEMON_SECONDS_PER_RUN:.0f} s of process start and "
        "bookkeeping per run (10-18 s measured per daemon-launched run on this machine kind), "
        "not the fetch and load, which is the same work either way."
    )
    return table
