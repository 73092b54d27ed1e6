"""Local runs whose ``finops`` process died mid-run: marked failed by the next CLI command.

``finops sync`` and ``finops demo`` execute their runs in-process. The daemon's run monitoring
cannot help with those: it asks the run launcher whether a run's worker is alive, the default
launcher cannot tell, and in-process runs never went through a launcher anyway. A run whose
process was killed (SIGKILL, an OOM kill, a closed terminal) would stay STARTED forever. So
every CLI run carries its host, process id and process start time, and the next CLI command on
that host fails the runs whose process is gone.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import dagster as dg
import psutil

HOST_TAG = "finops/cli_host"
PID_TAG = "finops/cli_pid"
#: With the pid, names the process even after the pid is reused.
PROCESS_STARTED_TAG = "finops/cli_process_started"

_UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# psutil reports start times rounded to the clock tick.
_START_TIME_TOLERANCE_SECONDS = 1.0


def process_tags() -> dict[str, str]:
    """The tags that tie a run to this process."""
    process = psutil.Process(os.getpid())
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(process.pid),
        PROCESS_STARTED_TAG: f"{process.create_time():.3f}",
    }


def process_is_running(pid: int, started_at: float) -> bool:
    """Whether the process that tagged a run still runs (not a later process with its pid)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - started_at) < _START_TIME_TOLERANCE_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's live process


@dataclass(frozen=True)
class AbandonedRun:
    """A run this command marked failed, and why."""

    run_id: str
    message: str


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[AbandonedRun]:
    """Mark failed every unfinished CLI run of this host whose process is gone.

    Runs of other hosts (an instance on shared storage) are left alone: their processes cannot
    be checked from here.
    """
    host = socket.gethostname()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=_UNFINISHED, tags={HOST_TAG: host})
    )
    abandoned = []
    for record in records:
        run = record.dagster_run
        try:
            pid = int(run.tags[PID_TAG])
            started_at = float(run.tags[PROCESS_STARTED_TAG])
        except (KeyError, ValueError):
            continue
        if process_is_running(pid, started_at):
            continue
        message = (
            f"The finops process that ran this run (pid {pid} on {host}) ended before the run "
            "finished (killed or crashed); a later finops command marked it failed. Windows "
            "it had not committed were rolled back; sync these accounts again."
        )
        instance.report_run_failed(run, message)
        abandoned.append(AbandonedRun(run.run_id, message))
    return abandoned
