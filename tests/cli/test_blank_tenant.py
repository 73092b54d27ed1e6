"""A blank tenant id is refused everywhere: on the command line, in Python, and by Postgres.

Row-Level Security reads an empty ``app.tenant_id`` as "no tenant", so rows stored under a
blank tenant could never be seen by a reporting session.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from finops_pipeline.cli.commands import main
from finops_pipeline.cli.onboarding import add_account
from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.migrate import head_revision, upgrade_database
from finops_pipeline.db.tenants import check_tenant_id, ensure_tenant, tenant_transaction
from finops_pipeline.errors import ConfigurationError
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret

pytestmark = pytest.mark.integration

BLANK = ["", " ", "\t", "  \n"]
PADDED = [" acme", "acme ", "\tacme"]
# What the issue reported, and padding; the pure test above covers every variant.
SAMPLES = ["", " ", "acme "]
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCLISECRET1"
KEY_ID = "AKIAIOSFODNN7CLITEST"


def counts(connection: psycopg.Connection) -> dict[str, int]:
    tables = ("tenants", "cloud_accounts", "cost_data", "account_sync_runs")
    return {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        for table in tables
    }


def test_pure_check_accepts_a_real_id_and_names_the_problem() -> None:
    assert check_tenant_id("acme") == "acme"
    assert check_tenant_id("acme corp") == "acme corp"  # inner spaces are a name, not padding
    for value in BLANK:
        with pytest.raises(ConfigurationError, match="blank"):
            check_tenant_id(value)
    for value in PADDED:
        with pytest.raises(ConfigurationError, match="leading or trailing whitespace"):
            check_tenant_id(value)


@pytest.mark.parametrize("tenant", SAMPLES)
@pytest.mark.parametrize("kind", ["keys", "role"])
def test_the_cli_refuses_it_as_a_usage_error_and_stores_nothing(
    database_url: str,
    encryption_key: str,
    tmp_path: Path,
    connection: psycopg.Connection,
    tenant: str,
    kind: str,
) -> None:
    credentials = (
        ["--access-key-id", KEY_ID]
        if kind == "keys"
        else ["--role-arn", "arn:aws:iam::123456789012:role/finops-reader"]
    )
    args = [
        "accounts", "add", "--tenant", tenant, "--name", "prod",
        "--account-number", "123456789012", *credentials,
        "--pipeline-principal-arn", "arn:aws:iam::111122223333:user/finops-pipeline",
    ]  # fmt: skip
    result = CliRunner().invoke(
        main,
        args,
        env={
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": encryption_key,
            "FINOPS_HOME": str(tmp_path),
            "FINOPS_AWS_SECRET_ACCESS_KEY": SECRET,
        },
    )
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--tenant'" in result.stderr
    assert result.stdout == ""
    assert set(counts(connection).values()) == {0}


@pytest.mark.parametrize("tenant", SAMPLES)
def test_every_python_path_refuses_it(
    connection: psycopg.Connection, key_ring: KeyRing, tenant: str
) -> None:
    keys = AwsAccessKeyCredentials(access_key_id=KEY_ID, secret_access_key=Secret(SECRET))
    with pytest.raises(ConfigurationError):
        add_account(
            connection,
            key_ring,
            tenant_id=tenant,
            name="prod",
            provider="aws",
            provider_account_id="123456789012",
            access_key_id=KEY_ID,
            secret_access_key=Secret(SECRET),
        )
    with pytest.raises(ConfigurationError):
        register_account(
            connection,
            key_ring,
            tenant_id=tenant,
            name="prod",
            provider="aws",
            provider_account_id="123456789012",
            credentials=keys,
        )
    with pytest.raises(ConfigurationError):
        ensure_tenant(connection, tenant)
    with pytest.raises(ConfigurationError), tenant_transaction(connection, tenant):
        pass
    assert set(counts(connection).values()) == {0}


@pytest.mark.parametrize("tenant", ["", " ", " acme", "acme\n"])
def test_postgres_refuses_it_in_every_table_whatever_writes_it(
    connection: psycopg.Connection, tenant: str
) -> None:
    account = str(uuid.uuid4())
    statements = {
        "tenants": ("INSERT INTO tenants (tenant_id, external_id) VALUES (%s, 'finops-x')",),
        "cloud_accounts": (
            "INSERT INTO cloud_accounts (id, tenant_id, name, provider, provider_account_id, "
            "credential_kind, credentials_encrypted) "
            "VALUES (%s, %s, 'n', 'aws', '123456789012', 'aws_access_key', '\\x00')",
            account,
        ),
        "cost_data": (
            "INSERT INTO cost_data (cloud_account_id, tenant_id, date, provider, service, "
            "usage_type, unblended_cost, amortized_cost, net_unblended_cost, usage_quantity, "
            "currency) VALUES (%s, %s, '2025-03-01', 'aws', 'S', 'U', 1, 1, 1, 1, 'USD')",
            account,
        ),
        "account_sync_runs": (
            "INSERT INTO account_sync_runs (cloud_account_id, tenant_id, run_id, status) "
            "VALUES (%s, %s, 'run-1', 'success')",
            account,
        ),
    }
    for table, (statement, *leading) in statements.items():
        with pytest.raises(psycopg.errors.CheckViolation, match=f"{table}_tenant_id_not_blank"):
            connection.execute(statement, (*leading, tenant))
    assert set(counts(connection).values()) == {0}


def test_upgrading_keeps_old_blank_rows_and_still_refuses_new_ones(
    engine: sa.Engine, connection: psycopg.Connection
) -> None:
    """A database that stored a blank tenant before the check upgrades without losing data."""
    from alembic import command

    from finops_pipeline.db.migrate import _alembic_config

    with engine.begin() as sa_connection:
        command.downgrade(_alembic_config(sa_connection), "0002")
    connection.execute("INSERT INTO tenants (tenant_id, external_id) VALUES (' ', 'finops-old')")

    assert upgrade_database(engine) == head_revision()

    assert connection.execute("SELECT tenant_id FROM tenants").fetchall() == [(" ",)]
    validated = dict(
        connection.execute(
            "SELECT conrelid::regclass::text, convalidated FROM pg_constraint "
            "WHERE conname LIKE '%%_tenant_id_not_blank'"
        ).fetchall()
    )
    assert validated == {
        "tenants": False,  # holds the old row; checked for new rows only
        "cloud_accounts": True,
        "cost_data": True,
        "account_sync_runs": True,
        # Created with the check (migration 0008).
        "cost_recommendations": True,
        "cost_anomalies": True,
        # Created with the check (migration 0010).
        "source_watermarks": True,
    }
    with pytest.raises(psycopg.errors.CheckViolation):
        connection.execute("INSERT INTO tenants (tenant_id, external_id) VALUES ('', 'finops-y')")
