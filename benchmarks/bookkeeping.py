"""Bookkeeping: Dagster's share of a 13-month range run on a Postgres-backed instance."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

from benchmarks.common import Table
from benchmarks.pipeline import _register, _resources, _window
from finops_pipeline.cli.demo import QUIET_RUN_CONFIG
from finops_pipeline.cli.runner import sync_accounts
from finops_pipeline.dagster_internals import EVENT_BATCH_SIZE_ENV, PLANNED_EVENTS_AS_SUBSET_ENV
from finops_pipeline.db.urls import to_libpq_url, with_database
from finops_pipeline.security.ciphertext import generate_key

Progress = Callable[[str], Any]
OFF = {EVENT_BATCH_SIZE_ENV: "0", PLANNED_EVENTS_AS_SUBSET_ENV: "false"}
CASES = (
    ("one event write per partition (before)", OFF),
    ("DAGSTER_EVENT_BATCH_SIZE=1000 only", {**OFF, EVENT_BATCH_SIZE_ENV: "1000"}),
    ("batched events + one planned event per run (ours, default)", {}),
)


@contextmanager
def postgres_instance(server: str) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance whose storage is a scratch Postgres database, as deploy/ sets up."""
    name = f"finops_bench_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    # psycopg2, as deploy/dagster.yaml requires (psycopg 3 fails every event write).
    url = with_database(server, name).replace("postgresql://", "postgresql+psycopg2://", 1)
    try:
        with tempfile.TemporaryDirectory() as home:
            Path(home, "dagster.yaml").write_text(
                f"storage:\n  postgres:\n    postgres_url: {url}\ntelemetry:\n  enabled: false\n"
            )
            with dg.DagsterInstance.from_config(home) as instance:
                yield instance
    finally:
        with psycopg.connect(to_libpq_url(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def bookkeeping_env(settings: dict[str, str]) -> Iterator[None]:
    """Set Dagster's event switches for one case, and restore them afterwards."""
    names = (EVENT_BATCH_SIZE_ENV, PLANNED_EVENTS_AS_SUBSET_ENV)
    previous = {name: os.environ.pop(name, None) for name in names}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in previous.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def run_bookkeeping(
    url: str, server: str, accounts: int, days: int, progress: Progress = print
) -> Table:
    """The same range run (new accounts each time) with event batching off and on."""
    key = generate_key()
    start, end = _window(days)
    days = (end - start).days + 1
    table = Table(
        f"Bookkeeping: {accounts} accounts x {days} days ({accounts * days:,} partitions) in one "
        "range run by `finops sync`'s runner, Postgres-backed Dagster instance",
        [
            "case",
            "partitions",
            "rows",
            "wall s",
            "inside the asset s",
            "Dagster s",
            "Dagster share",
            "goal",
        ],
    )
    for index, (label, settings) in enumerate(CASES):
        numbers = [f"7{index}{n:010d}" for n in range(1, accounts + 1)]
        account_ids = _register(url, key, numbers)
        with postgres_instance(server) as instance, bookkeeping_env(settings):
            instance.add_dynamic_partitions("cloud_accounts", account_ids)
            started = time.perf_counter()
            result = sync_accounts(
                account_ids,
                start,
                end,
                instance=instance,
                resources=_resources(url, key),
                run_config=QUIET_RUN_CONFIG,
            )
            wall = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"bookkeeping run failed: {result.error}")
        inside = float(result.statistics.get("elapsed_seconds", 0.0))
        progress(f"  bookkeeping: {label}: {wall:.1f} s wall, {inside:.1f} s inside")
        table.rows.append(
            [
                label,
                accounts * days,
                int(result.statistics.get("row_count", 0)),
                round(wall, 1),
                round(inside, 1),
                round(wall - inside, 1),
                f"{(wall - inside) / wall:.0%}",
                "<= 50%" if not settings else "",
            ]
        )
    table.notes.append(
        "Ours: DAGSTER_EVENT_BATCH_SIZE=1000 and DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
        "=true, which the runner and the asset set unless the deployment did. Each case loads "
        "new accounts (the sandbox gives each account its own rows)."
    )
    table.notes.append(
        "Inside the asset: fetching the sandbox's pages, parsing, loading (the asset's "
        "elapsed_seconds). The rest is Dagster: run start, one materialisation event per "
        "partition written to the event log, and the run's other events."
    )
    return table
