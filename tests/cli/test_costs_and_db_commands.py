"""`finops costs`, `finops db url` and `finops db shell` against a real Postgres."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from finops_pipeline.cli.commands import main
from finops_pipeline.db import psql as psql_module
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.psql import PSQL_MISSING, psql_command
from finops_pipeline.db.reports import tenant_costs
from finops_pipeline.db.tenants import REPORTING_ROLE
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret

pytestmark = pytest.mark.integration

DAY_1, DAY_2, DAY_3 = dt.date(2026, 5, 1), dt.date(2026, 5, 2), dt.date(2026, 5, 3)


def add_cost(
    connection: psycopg.Connection,
    tenant: str,
    account: str,
    day: dt.date,
    service: str,
    usage_type: str,
    unblended: str,
    net: str,
) -> None:
    connection.execute(
        """
        INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service, usage_type,
            unblended_cost, amortized_cost, net_unblended_cost, usage_quantity, currency)
        VALUES (%s, %s, %s, 'aws', %s, %s, %s, %s, %s, 1, 'USD')
        """,
        (tenant, account, day, service, usage_type, unblended, unblended, net),
    )


@pytest.fixture
def costs(connection: psycopg.Connection, key_ring: KeyRing) -> dict[str, list[str]]:
    """Two accounts of tenant-a and one of tenant-b, with costs over three days."""
    accounts: dict[str, list[str]] = {"tenant-a": [], "tenant-b": []}
    for tenant, count in (("tenant-a", 2), ("tenant-b", 1)):
        for n in range(count):
            accounts[tenant].append(
                register_account(
                    connection,
                    key_ring,
                    tenant_id=tenant,
                    name=f"{tenant} {n}",
                    provider="aws",
                    provider_account_id=f"12345678901{n}",
                    credentials=AwsAccessKeyCredentials(
                        access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("s3cr3t")
                    ),
                )
            )
    a1, a2 = accounts["tenant-a"]
    (b1,) = accounts["tenant-b"]
    # Two usage types and two accounts of one service on one day add up to one line.
    add_cost(connection, "tenant-a", a1, DAY_1, "Amazon EC2", "BoxUsage", "10.125", "9.125")
    add_cost(connection, "tenant-a", a1, DAY_1, "Amazon EC2", "EBS:Volume", "0.875", "0.875")
    add_cost(connection, "tenant-a", a2, DAY_1, "Amazon EC2", "BoxUsage", "5.000", "5.000")
    add_cost(connection, "tenant-a", a1, DAY_1, "Amazon S3", "Storage", "2.5", "2.5")
    add_cost(connection, "tenant-a", a1, DAY_2, "Amazon S3", "Storage", "3.25", "-1.75")
    add_cost(connection, "tenant-a", a1, DAY_3, "Amazon S3", "Storage", "100", "100")
    add_cost(connection, "tenant-b", b1, DAY_1, "Amazon EC2", "BoxUsage", "777", "777")
    return accounts


EXPECTED_A = [
    (DAY_1, "Amazon EC2", Decimal("16.000"), Decimal("15.000")),
    (DAY_1, "Amazon S3", Decimal("2.5"), Decimal("2.5")),
    (DAY_2, "Amazon S3", Decimal("3.25"), Decimal("-1.75")),
]


def test_tenant_costs_per_service_and_day(
    connection: psycopg.Connection, costs: dict[str, list[str]]
) -> None:
    report = tenant_costs(connection, "tenant-a", DAY_1, DAY_2)
    assert [(r.day, r.service, r.unblended_cost, r.net_unblended_cost) for r in report.rows] == (
        EXPECTED_A
    )
    assert report.totals() == {"USD": (Decimal("21.750"), Decimal("15.750"))}


def test_tenant_costs_through_row_level_security_as_a_reporting_login(
    database_url: str, connection: psycopg.Connection, costs: dict[str, list[str]]
) -> None:
    role = f"finops_costs_{uuid.uuid4().hex[:10]}"
    connection.execute(f"CREATE ROLE {role} LOGIN")
    connection.execute(f"GRANT {REPORTING_ROLE} TO {role}")
    try:
        conninfo = psycopg.conninfo.make_conninfo(to_libpq_url(database_url), user=role)
        with psycopg.connect(conninfo, autocommit=True) as reporting:
            report = tenant_costs(reporting, "tenant-a", DAY_1, DAY_2)
            other = tenant_costs(reporting, "tenant-b", DAY_1, DAY_2)
    finally:
        connection.execute(f"DROP OWNED BY {role}")
        connection.execute(f"DROP ROLE {role}")
    assert [(r.day, r.service, r.unblended_cost, r.net_unblended_cost) for r in report.rows] == (
        EXPECTED_A
    )
    assert [(r.service, r.unblended_cost) for r in other.rows] == [("Amazon EC2", Decimal(777))]


def test_unknown_tenant_and_reversed_window_are_refused(
    connection: psycopg.Connection, costs: dict[str, list[str]]
) -> None:
    with pytest.raises(ConfigurationError, match="No accounts or costs are recorded for tenant"):
        tenant_costs(connection, "nobody", DAY_1, DAY_2)
    with pytest.raises(ConfigurationError, match="is before --start"):
        tenant_costs(connection, "tenant-a", DAY_2, DAY_1)


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def test_costs_command_text_and_json(cli_env: str, costs: dict[str, list[str]]) -> None:
    runner = CliRunner()
    args = ["costs", "--tenant", "tenant-a", "--start", str(DAY_1), "--end", str(DAY_2)]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert (
        lines[0]
        == "Costs of tenant tenant-a, 2026-05-01..2026-05-02 (unblended, per day and service)"
    )
    assert lines[2].split() == ["2026-05-01", "Amazon", "EC2", "16.00", "USD"]
    assert lines[3].split() == ["Amazon", "S3", "2.50", "USD"]
    assert lines[4].split() == ["2026-05-02", "Amazon", "S3", "3.25", "USD"]
    assert "21.75  USD  (net of credits and refunds: 15.75)" in lines[5]
    assert "777" not in text.output  # another tenant's costs

    as_json = runner.invoke(main, [*args, "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.output)
    assert [
        (row["date"], row["service"], row["unblended_cost"], row["net_unblended_cost"])
        for row in payload["rows"]
    ] == [(d.isoformat(), s, str(u), str(n)) for d, s, u, n in EXPECTED_A]
    assert payload["totals"] == [
        {"currency": "USD", "unblended_cost": "21.750", "net_unblended_cost": "15.750"}
    ]


def test_costs_command_defaults_to_the_last_seven_days(
    cli_env: str, connection: psycopg.Connection, costs: dict[str, list[str]]
) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    account = costs["tenant-a"][0]
    add_cost(connection, "tenant-a", account, yesterday, "AWS Lambda", "Requests", "1.5", "1.5")
    week_ago = yesterday - dt.timedelta(days=7)
    add_cost(connection, "tenant-a", account, week_ago, "AWS Glue", "Jobs", "9", "9")
    result = CliRunner().invoke(main, ["costs", "--tenant", "tenant-a", "--output", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert (payload["start"], payload["end"]) == (
        (yesterday - dt.timedelta(days=6)).isoformat(),
        yesterday.isoformat(),
    )
    assert [row["service"] for row in payload["rows"]] == ["AWS Lambda"]


def test_costs_command_errors_are_one_line(cli_env: str, costs: dict[str, list[str]]) -> None:
    result = CliRunner().invoke(main, ["costs", "--tenant", "nobody"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: No accounts or costs are recorded for tenant 'nobody'")
    blank = CliRunner().invoke(main, ["costs", "--tenant", " "])
    assert blank.exit_code == 2
    assert "The tenant id is blank" in blank.output
    bad_day = CliRunner().invoke(main, ["costs", "--tenant", "tenant-a", "--end", "May 3"])
    assert bad_day.exit_code == 2
    assert "'May 3' is not a YYYY-MM-DD date" in bad_day.output


def test_db_url_masks_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://finops:hunter2-secret@db.internal:5432/finops")
    result = CliRunner().invoke(main, ["db", "url"])
    assert result.exit_code == 0
    assert result.stdout == "postgresql://finops:***@db.internal:5432/finops\n"
    assert "hunter2" not in result.output


def test_psql_gets_the_password_from_the_environment_never_argv() -> None:
    argv, env = psql_command("/usr/bin/psql", "postgresql+psycopg2://u:p%40ss@h:5433/db")
    assert argv[0] == "/usr/bin/psql"
    assert "p@ss" not in " ".join(argv)
    assert psycopg.conninfo.conninfo_to_dict(argv[1]) == {
        "user": "u",
        "host": "h",
        "port": "5433",
        "dbname": "db",
    }
    assert env == {"PGPASSWORD": "p@ss"}


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql on PATH")
def test_db_shell_runs_psql_on_the_database(cli_env: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": cli_env}
    finops = Path(sys.executable).parent / "finops"
    result = subprocess.run(
        [str(finops), "db", "shell"],
        input="SELECT current_database() || ':' || (40 + 2);\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    database = psycopg.conninfo.conninfo_to_dict(to_libpq_url(cli_env))["dbname"]
    assert f"{database}:42" in result.stdout


def test_db_shell_without_psql_says_what_to_do(
    cli_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no psql here
    monkeypatch.setattr(psql_module, "pgserver_bin_folder", lambda: tmp_path)  # nor here
    result = CliRunner().invoke(main, ["db", "shell"])
    assert result.exit_code == 1
    assert result.output == f"error: {PSQL_MISSING} [ConfigurationError]\n"
    assert "finops db url" in result.output
    assert "apt-get install postgresql-client" in result.output


def test_find_psql_falls_back_to_the_bundled_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundled = tmp_path / "psql"
    bundled.write_text("#!/bin/sh\n")
    bundled.chmod(0o755)
    monkeypatch.setattr(psql_module, "pgserver_bin_folder", lambda: tmp_path)
    assert psql_module.find_psql(path=str(tmp_path / "empty")) == str(bundled)
