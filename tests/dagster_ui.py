"""Drive a running ``finops ui`` / ``dagster dev`` through its webserver's GraphQL API.

Used by ``tests/cli/test_ui_embedded.py``, and by hand to launch the UI several times in a row:

    python -m tests.dagster_ui --launches 5 --backfill   # FINOPS_HOME set, `finops demo` done

Everything is read from the webserver, as a user of the UI would see it: sensor ticks (the
daemon evaluates the sensors in the code server and records each tick), and backfills launched
with ``launchPartitionBackfill``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

LOCATION = "finops_pipeline"
REPOSITORY = "__repository__"
SENSORS = ("cloud_accounts_sensor", "last_sync_success_sensor", "last_sync_failure_sensor")
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
#: Tick statuses after which a tick's partition changes and run requests are recorded.
FINISHED_TICK_STATUSES = {"SUCCESS", "SKIPPED", "FAILURE"}

_TICKS_QUERY = """
query Ticks($selector: RepositorySelector!, $after: Float) {
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors {
      results {
        name
        sensorState {
          status
          ticks(afterTimestamp: $after, limit: 500) { status timestamp error { message } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

_LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

_BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      runs { runId status }
    }
    ... on PythonError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def graphql(port: int, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


@dataclass
class Tick:
    sensor: str
    status: str
    timestamp: float
    error: str | None


@dataclass
class LaunchReport:
    """What one launch of the UI showed."""

    launch: int
    seconds_to_ready: float = 0.0
    seconds_to_ticks: float = 0.0
    backfill_seconds: float = 0.0
    ticks: list[Tick] = field(default_factory=list)
    backfill_status: str | None = None
    backfill_runs: list[tuple[str, str]] = field(default_factory=list)
    #: Seconds from Ctrl-C to the last process of the group exiting.
    shutdown_seconds: float = 0.0
    #: Commands still running a minute after Ctrl-C, which the harness killed.
    killed: list[str] = field(default_factory=list)

    @property
    def failed_ticks(self) -> list[Tick]:
        return [tick for tick in self.ticks if tick.status == "FAILURE"]

    def ticks_by_sensor(self) -> dict[str, int]:
        counts = dict.fromkeys(SENSORS, 0)
        for tick in self.ticks:
            counts[tick.sensor] = counts.get(tick.sensor, 0) + 1
        return counts

    def line(self) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in self.ticks_by_sensor().items())
        backfill = (
            f"; backfill {self.backfill_status} in {self.backfill_seconds:.0f} s "
            f"({len(self.backfill_runs)} runs: "
            f"{', '.join(status for _, status in self.backfill_runs)})"
            if self.backfill_status
            else ""
        )
        return (
            f"launch {self.launch}: ready in {self.seconds_to_ready:.0f} s, ticks after "
            f"{self.seconds_to_ticks:.0f} s; ticks {len(self.ticks)} ({counts}); "
            f"failed {len(self.failed_ticks)}{backfill}; stopped in "
            f"{self.shutdown_seconds:.0f} s"
            + (f", killed after the wait: {'; '.join(self.killed)}" if self.killed else "")
        )


def sensor_ticks(port: int, since: float) -> list[Tick]:
    """Every tick of the three sensors recorded at or after ``since`` (epoch seconds)."""
    # With a time bound the webserver reads the ticks straight from the instance. Without one
    # it takes a batched "latest ticks" path, which returned no ticks at all on this SQLite
    # instance while the daemon was recording them.
    data = graphql(
        port,
        _TICKS_QUERY,
        {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY},
            "after": since,
        },
    )["sensorsOrError"]
    if data["__typename"] != "Sensors":
        raise AssertionError(f"cannot list sensors: {data}")
    ticks = []
    for sensor in data["results"]:
        for tick in sensor["sensorState"]["ticks"]:
            if tick["timestamp"] >= since:
                error = (tick.get("error") or {}).get("message")
                ticks.append(Tick(sensor["name"], tick["status"], tick["timestamp"], error))
    return ticks


def launch_backfill(port: int, partition_names: Sequence[str]) -> str:
    """Launch an asset backfill of ``cost_data`` as the UI's Materialize dialog does."""
    result = graphql(
        port,
        _LAUNCH_BACKFILL,
        {
            "params": {
                "partitionNames": list(partition_names),
                "assetSelection": [{"path": ["cost_data"]}],
            }
        },
    )["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise AssertionError(f"backfill not launched: {result}")
    return str(result["backfillId"])


def backfill_state(port: int, backfill_id: str) -> tuple[str, list[tuple[str, str]]]:
    result = graphql(port, _BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise AssertionError(f"cannot read backfill {backfill_id}: {result}")
    return result["status"], [(run["runId"], run["status"]) for run in result["runs"]]


# Runs the command as a terminal would: with SIGINT's default action. A test run started as a
# background job (`pytest &`, a CI runner) ignores SIGINT, every child inherits that, and a
# Python program that starts with SIGINT ignored never raises KeyboardInterrupt: plain
# `dagster dev` then sat out Ctrl-C (its webserver and daemon install handlers of their own
# and stopped; it did not). `finops ui` restores the handler itself.
_AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


class UiProcess:
    """``finops ui`` (or any ``dagster dev`` command) in its own process group."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.shutdown_seconds = 0.0
        self.killed: list[str] = []
        # Every Python process of the group loads tests/ui_diagnostics/sitecustomize.py.
        diagnostics = str(Path(__file__).with_name("ui_diagnostics"))
        python_path = os.pathsep.join(filter(None, [diagnostics, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _AS_FROM_A_TERMINAL, *command],
            env={**env, "PYTHONPATH": python_path},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 60) -> None:
        """SIGINT the whole group as Ctrl-C would reach it, then SIGKILL what is left.

        Records how long the group took to exit (``shutdown_seconds``) and the commands that
        were still running after ``timeout`` and had to be killed (``killed``).
        """
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.killed.extend(_group_commands(self.process.pid))
            _dump_stacks(self.process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Children finishing their own shutdown (a run worker, the code server) get the time
        # a person waiting at the terminal would give them; only what is left after that is
        # killed (the embedded server's watchdog then stops the server they held).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _group_alive(self.process.pid):
            time.sleep(0.5)
        if _group_alive(self.process.pid):
            self.killed.extend(_group_commands(self.process.pid))
            _dump_stacks(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.shutdown_seconds = time.monotonic() - started
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _group_commands(pgid: int) -> list[str]:
    """The first words of each live (not zombie) process's command line in group ``pgid``."""
    commands = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if os.getpgid(process.pid) != pgid or process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, PermissionError):
            continue
        commands.append(" ".join((process.info["cmdline"] or ["?"])[:5]))
    return commands


def _dump_stacks(pgid: int) -> None:
    """Have each process of the group print its threads' stacks into the launch's log."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGUSR1)
    time.sleep(2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_RUNS_IN_FLIGHT_QUERY = """
query RunsInFlight {
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
    __typename
    ... on Runs { results { runId } }
  }
}
"""


def runs_in_flight(port: int) -> int:
    """Runs queued or running: a sensor or automation may have launched some."""
    result = graphql(port, _RUNS_IN_FLIGHT_QUERY)["runsOrError"]
    return len(result.get("results", []))


def wait_until(what: str, probe: Any, ui: UiProcess, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            value = probe()
            if value:
                return value
        if not ui.alive():
            raise AssertionError(
                f"the UI exited while waiting for {what}:\n{ui.log_text()[-4000:]}"
            )
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def running_ui(
    command: Sequence[str], env: Mapping[str, str], log: Path, port: int, timeout: float = 240
) -> Iterator[UiProcess]:
    """Start the UI and yield once its code location has loaded."""
    ui = UiProcess(command, env, log)
    try:
        wait_until(
            "the code location to load",
            lambda: (
                graphql(
                    port,
                    _TICKS_QUERY,
                    {
                        "selector": {
                            "repositoryLocationName": LOCATION,
                            "repositoryName": REPOSITORY,
                        }
                    },
                )["sensorsOrError"]["__typename"]
                == "Sensors"
            ),
            ui,
            timeout,
        )
        yield ui
    finally:
        ui.stop()


def observe_launch(
    launch: int,
    command: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    port: int,
    *,
    ticks_per_sensor: int,
    backfill_partitions: Sequence[str] = (),
    timeout: float = 240,
    while_running: Callable[[UiProcess], None] | None = None,
) -> LaunchReport:
    """Start the UI, wait for ``ticks_per_sensor`` ticks of every sensor, call
    ``while_running``, optionally run a backfill to its end, and stop the UI."""
    report = LaunchReport(launch)
    started = time.time()
    with running_ui(command, env, log, port, timeout) as ui:
        report.seconds_to_ready = time.time() - started

        def enough_ticks() -> list[Tick] | None:
            ticks = sensor_ticks(port, started)
            # Only a finished tick has applied its partition changes: the daemon records a
            # tick as STARTED first, and a backfill of partitions it is still adding is refused
            # (PartitionKeysNotFoundError).
            finished = [tick for tick in ticks if tick.status in FINISHED_TICK_STATUSES]
            counts = LaunchReport(launch, ticks=finished).ticks_by_sensor()
            failed = any(tick.status == "FAILURE" for tick in ticks)
            return ticks if failed or min(counts.values()) >= ticks_per_sensor else None

        report.ticks = wait_until("sensor ticks", enough_ticks, ui, timeout)
        report.seconds_to_ticks = time.time() - started
        if while_running is not None:
            while_running(ui)
        if backfill_partitions:
            launched = time.time()
            backfill_id = launch_backfill(port, backfill_partitions)

            def finished() -> tuple[str, list[tuple[str, str]]] | None:
                status, runs = backfill_state(port, backfill_id)
                return (status, runs) if status in BACKFILL_DONE else None

            report.backfill_status, report.backfill_runs = wait_until(
                "the backfill", finished, ui, timeout
            )
            report.backfill_seconds = time.time() - launched
            # Ticks that happened while the backfill ran count too.
            report.ticks = sensor_ticks(port, started)
        # Stop as a person would: once the runs the sensors and automation launched are done.
        wait_until("runs in flight to finish", lambda: runs_in_flight(port) == 0, ui, timeout)
    report.shutdown_seconds, report.killed = ui.shutdown_seconds, ui.killed
    return report


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--ticks-per-sensor", type=int, default=2)
    parser.add_argument("--backfill", action="store_true", help="2 demo accounts x 10 days")
    parser.add_argument("--command", default=None, help="default: finops ui -p PORT")
    parser.add_argument("--logs", type=Path, default=Path("/var/tmp/finops-ui-launches"))
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)

    partitions: list[str] = []
    if args.backfill:
        partitions = demo_backfill_partitions(accounts=2, days=10)
    failures = 0
    for launch in range(1, args.launches + 1):
        port = free_port()
        command = (
            args.command.format(port=port).split()
            if args.command
            else [str(Path(sys.executable).parent / "finops"), "ui", "--port", str(port)]
        )
        report = observe_launch(
            launch,
            command,
            os.environ,
            args.logs / f"launch-{launch}.log",
            port,
            ticks_per_sensor=args.ticks_per_sensor,
            backfill_partitions=partitions,
        )
        print(report.line(), flush=True)
        for tick in report.failed_ticks[:3]:
            print(f"    {tick.sensor}: {tick.error}", flush=True)
        failures += len(report.failed_ticks)
        failures += int(bool(partitions) and report.backfill_status != "COMPLETED_SUCCESS")
    return 1 if failures else 0


def demo_backfill_partitions(accounts: int, days: int) -> list[str]:
    """``account|date`` keys for the first active accounts over the last complete days.

    Read with ``finops accounts list`` in a child process, so this process never holds the
    embedded server: the UI must start it itself, as it does for a user.
    """
    import datetime as dt

    from finops_pipeline.sync.ranges import account_date_key

    listed = subprocess.run(
        [str(Path(sys.executable).parent / "finops"), "accounts", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    ids = [row["id"] for row in json.loads(listed.stdout) if row["status"] == "active"]
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return [
        account_date_key(account, yesterday - dt.timedelta(days=offset))
        for account in ids[:accounts]
        for offset in range(days)
    ]


if __name__ == "__main__":
    sys.exit(_main())
