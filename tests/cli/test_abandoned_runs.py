"""A `finops sync` killed with SIGKILL: its run is failed by the next command, with last sync."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import dagster as dg
import psutil
import pytest

from finops_pipeline.cli.abandoned_runs import (
    HOST_TAG,
    PID_TAG,
    PROCESS_STARTED_TAG,
    process_is_running,
    process_tags,
)
from finops_pipeline.security.ciphertext import KeyRing
from tests.cli_sandbox import (
    SANDBOX_NUMBERS,
    add_sandbox_account,
    cli_env,
    finops,
    last_sync,
    recent_window,
)

pytestmark = pytest.mark.integration


def wait_for_started_run(home: Path, process: subprocess.Popen[str]) -> str:
    """The id of the process's run once it is STARTED.

    Read-only from the instance's SQLite file: opening a DagsterInstance while the process is
    still creating its storage would race with its migrations.
    """
    runs_db = home / "history" / "runs.db"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with closing(sqlite3.connect(f"file:{runs_db}?mode=ro", uri=True)) as runs:
                row = runs.execute("SELECT run_id FROM runs WHERE status = 'STARTED'").fetchone()
        except sqlite3.Error:
            row = None  # not created yet
        if row:
            return str(row[0])
        time.sleep(0.5)
    raise AssertionError("the sync never started its run")


def test_a_sync_killed_mid_run_is_marked_failed_by_the_next_one(
    database_url: str, encryption_key: str, key_ring: KeyRing, tmp_path: Path
) -> None:
    killed_account, other_account = (
        add_sandbox_account(database_url, key_ring, n) for n in SANDBOX_NUMBERS
    )
    start, end = recent_window(3)
    env = cli_env(database_url, encryption_key, tmp_path)
    dagster_home = Path(env["DAGSTER_HOME"])
    window = ["--start", start.isoformat(), "--end", end.isoformat()]
    # Each Cost Explorer answer takes 10 minutes: the run is STARTED when the process dies.
    slow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "finops_pipeline.cli",
            "sync",
            "--account",
            killed_account,
            *window,
        ],
        env={**env, "FINOPS_SANDBOX_LATENCY_MS": "600000"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = wait_for_started_run(dagster_home, slow)
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.communicate(timeout=60)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.STARTED
    assert run.tags[PID_TAG] == str(slow.pid)

    result = finops("sync", "--account", other_account, *window, env=env)

    assert result.returncode == 0, result.stderr
    assert f"note: marked run {run.run_id} failed: The finops process" in result.stderr
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        ended = instance.get_run_by_id(run.run_id)
        assert ended is not None and ended.status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        assert len(failure) == 1
        assert f"pid {slow.pid}" in (failure[0].event_log_entry.dagster_event.message or "")
    status, error, run_id = last_sync(database_url, killed_account)
    assert (status, run_id) == ("failed", run.run_id)
    assert f"(pid {slow.pid} on " in str(error) and "killed or crashed" in str(error)
    assert last_sync(database_url, other_account)[0] == "success"

    # A later command changes nothing more: the run is failed once.
    again = finops("sync", "--account", other_account, *window, env=env)
    assert again.returncode == 0 and "note: marked run" not in again.stderr


def test_a_process_is_named_by_its_pid_and_start_time() -> None:
    tags = process_tags()
    assert tags[PID_TAG] == str(os.getpid()) and tags[HOST_TAG]
    started = float(tags[PROCESS_STARTED_TAG])
    assert process_is_running(os.getpid(), started)
    # The same pid with another start time is a later process: the tagged one is gone.
    assert not process_is_running(os.getpid(), started - 3600)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished_started = psutil.Process(finished.pid).create_time()
    finished.wait()
    assert not process_is_running(finished.pid, finished_started)
