"""`finops db upgrade` and `finops sync` as a user runs them, against a moto server."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from moto.server import ThreadedMotoServer

from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from tests.ce_responses import StrictMotoCostExplorer, expected_rows, paginate, simple_days
from tests.dates import RECENT_START

pytestmark = pytest.mark.integration

START = RECENT_START


@pytest.fixture
def moto_endpoint(moto_ce: StrictMotoCostExplorer) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def finops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finops_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_db_upgrade_then_sync_loads_rows_you_can_count(
    tmp_path: Path,
    server_url: str,
    moto_endpoint: str,
    moto_ce: StrictMotoCostExplorer,
    encryption_key: str,
    key_ring: KeyRing,
) -> None:
    database = f"finops_cli_{os.getpid()}"
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    from finops_pipeline.db.urls import with_database

    database_url = with_database(server_url, database)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    try:
        upgrade = finops("db", "upgrade", env=env)
        assert upgrade.returncode == 0, upgrade.stderr
        assert "revision" in upgrade.stdout

        with psycopg.connect(to_libpq_url(database_url), autocommit=True) as connection:
            account_id = register_account(
                connection,
                key_ring,
                tenant_id="acme",
                name="acme prod",
                provider="aws",
                provider_account_id="123456789012",
                credentials=AwsAccessKeyCredentials(
                    access_key_id="AKIAEXAMPLEKEY000002", secret_access_key=Secret("cli-secret-1")
                ),
                endpoint_url=moto_endpoint,
            )
        for page in paginate(simple_days(START, 7, [("Amazon EC2", "BoxUsage")]), per_page=3):
            response = requests.post(
                f"{moto_endpoint}/moto-api/static/ce/cost-and-usage-results",
                json={"results": [page]},
                timeout=10,
            )
            assert response.status_code == 201

        end = (START + dt.timedelta(days=6)).isoformat()
        sync = finops(
            "sync",
            "--account",
            account_id,
            "--start",
            START.isoformat(),
            "--end",
            end,
            "--output",
            "json",
            env=env,
        )
        assert sync.returncode == 0, sync.stderr
        report = json.loads(sync.stdout)
        assert report["success"] is True
        assert report["statistics"]["row_count"] == 7
        assert report["statistics"]["paid_ce_requests"] == 3
        assert moto_ce.time_periods() == [
            (START.isoformat(), (START + dt.timedelta(days=7)).isoformat(), None),
            (START.isoformat(), (START + dt.timedelta(days=7)).isoformat(), "page-1"),
            (START.isoformat(), (START + dt.timedelta(days=7)).isoformat(), "page-2"),
        ]
        with psycopg.connect(to_libpq_url(database_url), autocommit=True) as connection:
            loaded = connection.execute(
                "SELECT date, service, usage_type, unblended_cost FROM cost_data ORDER BY date"
            ).fetchall()
            assert loaded == expected_rows(START, 7, [("Amazon EC2", "BoxUsage")])
            last_sync = connection.execute(
                "SELECT last_sync_status, last_sync_rows, last_sync_run_id, last_sync_at IS NOT NULL"
                " FROM cloud_accounts WHERE id = %s",
                (account_id,),
            ).fetchone()
        assert last_sync == ("success", 7, report["run_id"], True)

        unknown = finops(
            "sync",
            "--account",
            "00000000-0000-0000-0000-00000000abcd",
            "--start",
            START.isoformat(),
            "--end",
            end,
            env=env,
        )
        assert unknown.returncode == 1
        assert "No cloud account" in unknown.stderr
        assert "cli-secret-1" not in sync.stdout + sync.stderr + unknown.stderr
    finally:
        with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_sync_refuses_a_window_ending_today(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    result = finops(
        "sync",
        "--account",
        "x",
        "--start",
        RECENT_START.isoformat(),
        "--end",
        today,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "partial" in result.stderr
