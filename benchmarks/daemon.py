"""End to end through the daemon: a UI-style backfill of K accounts x D days, against K
single-day runs, on the Postgres-backed instance of ``deploy/dagster.yaml``."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

from benchmarks.common import RESULTS_DIR, Table
from benchmarks.pipeline import _register, _window
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.dagster_internals import (
    BACKFILL_ID_TAG,
    EVENT_BATCH_SIZE,
    EVENT_BATCH_SIZE_ENV,
    PLANNED_EVENTS_AS_SUBSET_ENV,
    BulkActionStatus,
    PartitionBackfill,
    make_new_backfill_id,
)
from finops_pipeline.db.urls import to_libpq_url, to_psycopg2_url, with_database
from finops_pipeline.security.ciphertext import generate_key
from finops_pipeline.sync.ranges import account_date_key

Progress = Callable[[str], Any]
REPO = Path(__file__).resolve().parent.parent
_FINISHED = {
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
}


@contextmanager
def running_daemon(url: str, server: str, key: str, home: Path) -> Iterator[dg.DagsterInstance]:
    """``dagster-daemon run`` on a scratch Dagster database, with ``deploy/dagster.yaml``."""
    name = f"finops_bench_daemon_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dagster_url = to_psycopg2_url(with_database(server, name))
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": dagster_url,
        "DATABASE_URL": url,
        "ENCRYPTION_KEY": key,
        "FINOPS_SCHEDULE_STATUS": "stopped",
        "FINOPS_SENSOR_STATUS": "stopped",
        "FINOPS_INITIAL_HISTORY_MONTHS": "off",
        # As the README's production section exports them on the daemon's host.
        EVENT_BATCH_SIZE_ENV: str(EVENT_BATCH_SIZE),
        PLANNED_EVENTS_AS_SUBSET_ENV: "true",
    }
    previous = os.environ.get("DAGSTER_POSTGRES_URL")
    os.environ["DAGSTER_POSTGRES_URL"] = dagster_url
    log = (home / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "daemon.log", RESULTS_DIR / "last-daemon.log")
        if previous is None:
            os.environ.pop("DAGSTER_POSTGRES_URL", None)
        else:
            os.environ["DAGSTER_POSTGRES_URL"] = previous
        with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backfill(instance: dg.DagsterInstance, partition_names: Sequence[str]) -> str:
    """A partition backfill of cost_data, as the UI's "Launch backfill" creates it."""
    from finops_pipeline.definitions import defs

    backfill_id = make_new_backfill_id()
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=defs.resolve_asset_graph(),
            partition_names=list(partition_names),
            asset_selection=[dg.AssetKey("cost_data")],
            backfill_timestamp=time.time(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
    )
    return backfill_id


def _wait(
    instance: dg.DagsterInstance, backfill_ids: Sequence[str], timeout: float
) -> tuple[float, list[dg.DagsterRun]]:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        backfills = [instance.get_backfill(backfill_id) for backfill_id in backfill_ids]
        if all(b is not None and b.status in _FINISHED for b in backfills):
            runs = [
                run
                for backfill_id in backfill_ids
                for run in instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
            ]
            if all(run.is_finished for run in runs):
                failed = [b for b in backfills if b.status != BulkActionStatus.COMPLETED_SUCCESS]
                if failed:
                    reasons = {str(b.failure_count) + " " + str(b.status) for b in failed}
                    raise RuntimeError(f"{len(failed)} backfill(s) did not succeed: {reasons}")
                return time.perf_counter() - started, runs
        time.sleep(1)
    raise RuntimeError(f"the daemon did not finish the backfills within {timeout:.0f} s")


def run_daemon_end_to_end(
    url: str, server: str, accounts: int, days: int, progress: Progress = print
) -> Table:
    """K single-day runs (K one-partition backfills), then one K accounts x D days backfill."""
    key = generate_key()
    start, end = _window(days)
    days = (end - start).days + 1
    account_ids = _register(url, key, [f"9{n:011d}" for n in range(1, accounts + 1)])
    table = Table(
        f"Through the daemon: {accounts} accounts x {days} days as a UI backfill, Postgres-backed "
        "instance (deploy/dagster.yaml), sandbox Cost Explorer",
        [
            "case",
            "runs",
            "account-days",
            "wall s",
            "s per run",
            "ms per account-day",
            "x single-day run",
        ],
    )
    with (
        tempfile.TemporaryDirectory() as home,
        running_daemon(url, server, key, Path(home)) as instance,
    ):
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, account_ids)
        baseline_day = start - dt.timedelta(days=1)
        singles = [_backfill(instance, [account_date_key(a, baseline_day)]) for a in account_ids]
        single_wall, single_runs = _wait(instance, singles, timeout=60 * 60)
        progress(f"  daemon: {len(single_runs)} single-day runs in {single_wall:.0f} s")
        names = [
            account_date_key(account, start + dt.timedelta(days=offset))
            for account in account_ids
            for offset in range(days)
        ]
        ranged = _backfill(instance, names)
        range_wall, range_runs = _wait(instance, [ranged], timeout=3 * 60 * 60)
        progress(f"  daemon: {accounts}x{days} in {len(range_runs)} runs, {range_wall:.0f} s")
    per_single = single_wall / accounts * 1000
    per_range = range_wall / (accounts * days) * 1000
    table.rows.append(
        [
            "K single-day runs (baseline)",
            len(single_runs),
            accounts,
            round(single_wall, 1),
            round(single_wall / len(single_runs), 1),
            round(per_single, 1),
            1.0,
        ]
    )
    table.rows.append(
        [
            "K x D backfill (ours)",
            len(range_runs),
            accounts * days,
            round(range_wall, 1),
            round(range_wall / len(range_runs), 1),
            round(per_range, 2),
            f"{per_range / per_single:.4f}",
        ]
    )
    table.notes.append(
        "Wall time from submitting the backfill(s) to the last run finishing, with the daemon's "
        "queue (max 8 concurrent runs) on this 2-core machine; s per run is wall over runs, so "
        "runs that overlap share it. The daemon splits a backfill by the dimension with fewer "
        "keys: one range run per account here."
    )
    return table
