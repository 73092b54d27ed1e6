"""`finops ui` and plain `dagster dev` on the embedded default, started several times in a row.

Each launch begins with the embedded server stopped, so Dagster's processes (or `finops ui`
before them) must start it, as they do for a user after `finops demo`. The daemon evaluates
the three sensors in the code server; every tick is read back from the webserver's GraphQL API
and any failed tick fails the test. The last launch also runs a backfill of 2 demo accounts ×
10 days, launched with `launchPartitionBackfill` as the UI's Materialize dialog does.

Run as root this reproduced `pg_ctl ... died with SIGSEGV` on most launches before the server
was started outside the threaded code server. `FINOPS_UI_TEST_LAUNCHES` sets the number of
launches (default 3: `finops ui`, plain `dagster dev`, `finops ui` with the backfill).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from finops_pipeline.db.embedded import (
    embedded_database_url,
    read_server_users,
    running_postmaster,
    stop_embedded_server,
    stop_server,
)
from finops_pipeline.sync.ranges import account_date_key
from tests.dagster_ui import LaunchReport, UiProcess, free_port, observe_launch

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
LAUNCHES = int(os.environ.get("FINOPS_UI_TEST_LAUNCHES", "3"))
BACKFILL_ACCOUNTS = 2
BACKFILL_DAYS = 10
# Bounds for each wait on a loaded 2-core machine; never reached when all is well.
WAIT_SECONDS = 300

_REGISTER_DEMO_ACCOUNTS = textwrap.dedent(
    """
    import json
    from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
    from finops_pipeline.cli.demo import ensure_demo_accounts, key_ring_for_demo
    from finops_pipeline.providers import provider_spec

    engine = create_finops_engine()
    with psycopg_connection(engine) as connection:
        ring, _ = key_ring_for_demo()
        # The AWS demo organisation only, as when this test was written; test_azure_ui_backfill
        # covers the Azure sandbox's subscriptions.
        aws = [provider_spec("aws")]
        print(json.dumps([a.account_id for a in ensure_demo_accounts(connection, ring, aws)]))
    engine.dispose()
    """
)


@pytest.fixture
def finops_home() -> Iterator[Path]:
    """A FINOPS_HOME under /var/tmp (world-traversable parents, as root needs)."""
    home = Path(tempfile.mkdtemp(prefix="finops-ui-", dir="/var/tmp"))
    home.chmod(0o755)
    try:
        yield home
    finally:
        stop_server(home, force=True)
        shutil.rmtree(home, ignore_errors=True)


def ui_env(home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DAGSTER_HOME", "ENCRYPTION_KEY"}
    }
    env.update(
        FINOPS_HOME=str(home),
        FINOPS_SENSOR_INTERVAL_SECONDS="5",
        # The sensors run as a user's would; only the 13-month first backfill per account is
        # left out, to keep the test short (the sensor tests cover it).
        FINOPS_INITIAL_HISTORY_MONTHS="off",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


def wait_until_stopped(pgdata: Path) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if running_postmaster(pgdata) is None:
            return True
        time.sleep(0.5)
    return False


def test_ui_sensors_tick_cleanly_on_every_launch_and_a_backfill_completes(
    finops_home: Path, tmp_path: Path
) -> None:
    env = ui_env(finops_home)
    pgdata = (finops_home / "pgdata").resolve()
    registered = subprocess.run(
        [sys.executable, "-c", _REGISTER_DEMO_ACCOUNTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert registered.returncode == 0, registered.stderr
    accounts = json.loads(registered.stdout.strip().splitlines()[-1])[:BACKFILL_ACCOUNTS]
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    days = [yesterday - dt.timedelta(days=offset) for offset in range(BACKFILL_DAYS)]
    partitions = [account_date_key(account, day) for account in accounts for day in days]

    finops = str(Path(sys.executable).parent / "finops")
    dagster_home = finops_home / "dagster"
    reports: list[LaunchReport] = []
    for launch in range(1, LAUNCHES + 1):
        assert wait_until_stopped(pgdata), f"the server still runs before launch {launch}"
        port = free_port()
        plain = launch % 2 == 0
        if plain:
            # Plain `dagster dev`: no finops process holds the server, the code server's
            # sensors start it themselves.
            command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml")]
            command += ["-p", str(port)]
            launch_env = {**env, "DAGSTER_HOME": str(dagster_home)}
        else:
            command, launch_env = [finops, "ui", "--port", str(port)], env

        def holders(ui: UiProcess, plain: bool = plain) -> None:
            users = {user.pid for user in read_server_users(pgdata)}
            if plain:
                assert users, "no process of dagster dev uses the server"
            else:
                # finops ui started the server before dagster dev and holds it.
                assert ui.process.pid in users

        report = observe_launch(
            launch,
            command,
            launch_env,
            tmp_path / f"launch-{launch}.log",
            port,
            ticks_per_sensor=2,
            backfill_partitions=partitions if launch == LAUNCHES else (),
            timeout=WAIT_SECONDS,
            while_running=holders,
        )
        reports.append(report)
        print(f"\n{'dagster dev' if plain else 'finops ui'}: {report.line()}")
        failed = report.failed_ticks
        assert not failed, f"launch {launch}: {len(failed)} failed ticks, first: {failed[0].error}"
        # Ctrl-C stopped every process within a minute: nothing had to be killed.
        assert not report.killed, report.line()
        # Every process let go of the server, and the last one (or, after a kill, the
        # server's watchdog) stopped it.
        assert wait_until_stopped(pgdata), f"the server still runs after launch {launch}"
        assert read_server_users(pgdata) == []

    last = reports[-1]
    assert last.backfill_status == "COMPLETED_SUCCESS", last.line()
    assert [status for _run, status in last.backfill_runs] == ["SUCCESS"] * len(last.backfill_runs)
    try:
        with psycopg.connect(embedded_database_url(finops_home)) as connection:
            loaded = connection.execute(
                "SELECT cloud_account_id::text, count(DISTINCT date) FROM cost_data "
                "WHERE cloud_account_id::text = ANY(%s) AND date BETWEEN %s AND %s GROUP BY 1",
                (accounts, days[-1], days[0]),
            ).fetchall()
    finally:
        stop_embedded_server(finops_home)
    assert dict(loaded) == dict.fromkeys(accounts, BACKFILL_DAYS)
