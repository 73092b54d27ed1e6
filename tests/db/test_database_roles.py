"""The README's database roles, end to end: the real ``finops`` CLI as a login set up as it says.

The README has an administrator migrate the database and the pipeline connect as its own
login, ``CREATE ROLE finops_app LOGIN ...; GRANT finops_pipeline TO finops_app``. The test
server's ``postgres`` superuser skips every privilege and policy check, so only a real
non-superuser login shows whether the grants are complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg
import pytest
import requests
import sqlalchemy as sa
from alembic import command
from moto.server import ThreadedMotoServer

from finops_pipeline.db.migrate import _alembic_config
from finops_pipeline.db.tenants import PIPELINE_ROLE
from finops_pipeline.db.urls import to_libpq_url, to_psycopg_url, with_database
from finops_pipeline.resources import PostgresResource
from finops_pipeline.sensors import cloud_accounts_sensor
from tests.ce_responses import StrictMotoCostExplorer, expected_request, paginate, simple_days
from tests.dates import RECENT_START

pytestmark = pytest.mark.integration

START = RECENT_START
DAYS = 5
SECRET = "roles-test-secret-0123456789"


def as_login(url: str, role: str, password: str) -> str:
    """``url`` with another user and password (TCP or a Unix-socket host alike)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


def finops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finops_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def moto_endpoint(moto_ce: StrictMotoCostExplorer) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def readme_database(server_url: str) -> Iterator[tuple[str, str]]:
    """An empty database, and a login role with a password made as the README says."""
    suffix = uuid.uuid4().hex[:10]
    name, role = f"finops_roles_{suffix}", f"finops_app_{suffix}"
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'app-password'")
    yield with_database(server_url, name), role
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_login_granted_finops_pipeline_runs_every_command(
    tmp_path: Path,
    server_url: str,
    readme_database: tuple[str, str],
    moto_endpoint: str,
    moto_ce: StrictMotoCostExplorer,
    encryption_key: str,
) -> None:
    admin_url, role = readme_database
    app_url = as_login(admin_url, role, "app-password")
    base = {
        **os.environ,
        "ENCRYPTION_KEY": encryption_key,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "FINOPS_HOME": str(tmp_path / "home"),
    }
    admin_env = {**base, "DATABASE_URL": admin_url}
    app_env = {**base, "DATABASE_URL": app_url}

    # A database migrated by the previous release, which never let the role read the version.
    engine = sa.create_engine(to_psycopg_url(admin_url), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0003")
    engine.dispose()

    # Without the role the login may not even read the schema version: one line, exit 1.
    refused = finops("accounts", "list", env=app_env)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: The database refused to read finops_schema_version (InsufficientPrivilege): "
        f"permission denied for table finops_schema_version. The login {role} needs the "
        f"finops_pipeline role: GRANT finops_pipeline TO {role} (README, Database roles). "
        "[DatabaseError]"
    ]

    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f"GRANT {PIPELINE_ROLE} TO {role}")
    with psycopg.connect(to_libpq_url(app_url), autocommit=True) as app:
        assert app.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False, False)
    # With the role, as the README says, every command failed until migration 0004.
    still_refused = finops("accounts", "list", env=app_env)
    assert still_refused.returncode == 1
    assert still_refused.stderr.strip().splitlines() == [
        "error: The database refused to read finops_schema_version (InsufficientPrivilege): "
        f"permission denied for table finops_schema_version. The login {role} has the "
        "finops_pipeline role, but the schema predates migration 0004, which lets that role "
        "read it: run `finops db upgrade` as the schema owner. [DatabaseError]"
    ]

    upgrade = finops("db", "upgrade", env=admin_env)
    assert upgrade.returncode == 0, upgrade.stderr

    added = finops(
        "accounts", "add", "--tenant", "acme", "--name", "acme prod",
        "--account-number", "123456789012", "--access-key-id", "AKIAEXAMPLEROLES0001",
        "--endpoint-url", moto_endpoint,
        env={**app_env, "FINOPS_AWS_SECRET_ACCESS_KEY": SECRET},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    account_id = added.stdout.strip()

    listed = finops("accounts", "list", "--output", "json", env=app_env)
    assert listed.returncode == 0, listed.stderr
    assert [(row["id"], row["tenant_id"]) for row in json.loads(listed.stdout)] == [
        (account_id, "acme")
    ]

    for page in paginate(simple_days(START, DAYS, [("Amazon EC2", "BoxUsage")]), per_page=2):
        response = requests.post(
            f"{moto_endpoint}/moto-api/static/ce/cost-and-usage-results",
            json={"results": [page]},
            timeout=10,
        )
        assert response.status_code == 201
    end = START + dt.timedelta(days=DAYS - 1)
    sync = finops(
        "sync", "--account", account_id, "--start", START.isoformat(), "--end", end.isoformat(),
        "--output", "json",
        env=app_env,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    report = json.loads(sync.stdout)
    assert report["statistics"]["row_count"] == DAYS
    assert moto_ce.requests == [
        expected_request(START, end),
        expected_request(START, end, token="page-1"),
        expected_request(START, end, token="page-2"),
    ]

    # The code location's account sensor, on the same login, records the history request.
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance, resources={"postgres": PostgresResource(database_url=app_url)}
        ) as context,
    ):
        tick = cloud_accounts_sensor(context)
    assert isinstance(tick, dg.SensorResult)
    assert {request.tags["finops/account"] for request in tick.run_requests or []} == {account_id}

    with psycopg.connect(to_libpq_url(admin_url), autocommit=True) as admin:
        assert admin.execute(
            "SELECT count(*), sum(unblended_cost) FROM cost_data WHERE cloud_account_id = %s",
            (account_id,),
        ).fetchone() == (DAYS, sum(simple_days_costs()))
        assert admin.execute(
            "SELECT last_sync_status, last_sync_rows, last_sync_run_id, "
            "initial_history_requested_at IS NOT NULL FROM cloud_accounts WHERE id = %s",
            (account_id,),
        ).fetchone() == ("success", DAYS, report["run_id"], True)
    assert SECRET not in added.stderr + listed.stdout + sync.stdout + sync.stderr


def simple_days_costs() -> list[Decimal]:
    """The unblended cost of each day :func:`simple_days` makes for one service."""
    return [
        Decimal(day["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"])
        for day in simple_days(START, DAYS, [("Amazon EC2", "BoxUsage")])
    ]
