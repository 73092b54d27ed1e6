"""End to end: the Dagster daemon on dagster-postgres, the shipped dagster.yaml, moto's server.

The daemon's account sensor discovers two accounts; then a partition backfill over both accounts × 60 days runs as the UI would launch it. The test checks
``cost_data`` and ``cloud_accounts.last_sync_*``, and prints how many runs and paid Cost
Explorer requests the backfill took.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psycopg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id
from moto.server import ThreadedMotoServer

from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.urls import to_libpq_url, to_psycopg2_url, with_database
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import account_date_key
from tests.ce_responses import (
    MOTO_ACCOUNT_ID,
    TWO_SERVICES,
    StrictMotoCostExplorer,
    expected_request,
    paginate,
    simple_days,
)
from tests.dates import RECENT_START

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
SERVICES = TWO_SERVICES
BACKFILL_START = RECENT_START
BACKFILL_DAYS = 60
# Bounds for each wait: generous for a loaded 2-core machine, never reached when all is well.
WAIT_SECONDS = 240

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moto_server(moto_ce: StrictMotoCostExplorer) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def queue_ce_results(endpoint: str, pages: list[dict[str, Any]]) -> None:
    """Queue Cost Explorer answers in the moto server; each new request body takes the next."""
    body = json.dumps({"results": pages, "account_id": MOTO_ACCOUNT_ID}).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/ce/cost-and-usage-results", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.fixture
def dagster_database(server_url: str) -> Iterator[str]:
    """Dagster's own storage, in a database of its own, as the README recommends."""
    name = f"finops_dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield to_psycopg2_url(with_database(server_url, name))
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(what: str, probe: Callable[[], T | None], process: subprocess.Popen) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        assert process.poll() is None, f"the daemon exited while waiting for {what}"
        time.sleep(1)
    raise AssertionError(f"timed out after {WAIT_SECONDS}s waiting for {what}")


def last_sync(connection: psycopg.Connection, account_ids: list[str]) -> dict[str, tuple]:
    rows = connection.execute(
        "SELECT id::text, last_sync_status, last_sync_run_id, last_sync_range_start, "
        "last_sync_range_end, last_sync_rows, last_sync_at FROM cloud_accounts "
        "WHERE id::text = ANY(%s)",
        (account_ids,),
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def synced(
    connection: psycopg.Connection, account_ids: list[str], from_run: Callable[[str], bool]
) -> dict[str, tuple] | None:
    """Every account's last sync, once all are successes from the runs ``from_run`` accepts."""
    state = last_sync(connection, account_ids)
    done = len(state) == len(account_ids) and all(
        value[0] == "success" and from_run(value[1]) for value in state.values()
    )
    return state if done else None


def test_daemon_discovers_accounts_and_runs_a_backfill(
    tmp_path: Path,
    moto_server: str,
    database_url: str,
    dagster_database: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    moto_ce: StrictMotoCostExplorer,
) -> None:
    accounts = [
        register_account(
            connection,
            key_ring,
            tenant_id=f"tenant-{n}",
            name=f"tenant {n}",
            provider="aws",
            provider_account_id=MOTO_ACCOUNT_ID,
            credentials=AwsAccessKeyCredentials(
                access_key_id=f"AKIAEXAMPLEKEY00000{n}", secret_access_key=Secret("s3cr3t-xyz")
            ),
            endpoint_url=moto_server,
        )
        for n in (1, 2)
    ]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": dagster_database,
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_SENSOR_INTERVAL_SECONDS": "2",
        "FINOPS_SCHEDULE_STATUS": "stopped",
        "FINOPS_INITIAL_HISTORY_MONTHS": "off",
        "FINOPS_RETRY_DELAY_SECONDS": "1",
    }
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-daemon"),
            "run",
            "-w",
            str(REPO / "workspace.yaml"),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.environ["DAGSTER_POSTGRES_URL"] = dagster_database
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            # 1. The account sensor adds both partitions (initial history is off here: the
            # sensor tests cover it; this keeps the daemon test short).
            wait_for(
                "the account partitions",
                lambda: (
                    set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)) == set(accounts)
                ),
                daemon,
            )
            # 2. A partition backfill over both accounts × 60 days, as the UI launches it.
            queue_ce_results(
                moto_server,
                paginate(simple_days(BACKFILL_START, BACKFILL_DAYS, SERVICES), per_page=100),
            )
            from finops_pipeline.definitions import defs

            end = BACKFILL_START + dt.timedelta(days=BACKFILL_DAYS - 1)
            partition_names = [
                account_date_key(account, BACKFILL_START + dt.timedelta(days=offset))
                for account in accounts
                for offset in range(BACKFILL_DAYS)
            ]
            backfill_id = make_new_backfill_id()
            instance.add_backfill(
                PartitionBackfill.from_asset_partitions(
                    backfill_id=backfill_id,
                    asset_graph=defs.resolve_asset_graph(),
                    partition_names=partition_names,
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
            finished = {
                BulkActionStatus.COMPLETED_SUCCESS,
                BulkActionStatus.COMPLETED_FAILED,
                BulkActionStatus.FAILED,
                BulkActionStatus.CANCELED,
            }
            backfill = wait_for(
                "the backfill",
                lambda: (
                    b
                    if (b := instance.get_backfill(backfill_id)) and b.status in finished
                    else None
                ),
                daemon,
            )
            assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
            runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
            run_ids = {run.run_id for run in runs}
            state = wait_for(
                "last sync of the backfill runs",
                lambda: synced(connection, accounts, lambda run_id: run_id in run_ids),
                daemon,
            )
        finally:
            instance.dispose()
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
        os.environ.pop("DAGSTER_POSTGRES_URL", None)

    for account in accounts:
        assert state[account][2:5] == (BACKFILL_START, end, len(SERVICES) * BACKFILL_DAYS)
    per_account = dict(
        connection.execute(
            "SELECT cloud_account_id::text, count(*) FROM cost_data "
            "WHERE date BETWEEN %s AND %s GROUP BY 1",
            (BACKFILL_START, end),
        ).fetchall()
    )
    assert per_account == {account: len(SERVICES) * BACKFILL_DAYS for account in accounts}
    paid = connection.execute(
        "SELECT coalesce(sum(paid_requests), 0) FROM account_sync_runs WHERE run_id = ANY(%s)",
        (list(run_ids),),
    ).fetchone()[0]
    # One Cost Explorer query per account and contiguous range, one page each here.
    assert paid == len(accounts)
    assert moto_ce.requests == [expected_request(BACKFILL_START, end)] * len(accounts)
    print(
        f"\n2 accounts x {BACKFILL_DAYS} days backfill: {len(run_ids)} runs, "
        f"{paid} paid Cost Explorer requests"
    )
