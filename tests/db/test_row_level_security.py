"""Tenant isolation with Row-Level Security, proved on real Postgres as the real roles.

The test server's ``postgres`` user is a superuser, which bypasses RLS; every check here
therefore runs as ``finops_reporting`` or ``finops_pipeline`` (through a LOGIN role made for
the test, or ``SET LOCAL ROLE`` inside a transaction).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.engine import psycopg_connection
from finops_pipeline.db.migrate import current_revision, head_revision, upgrade_database
from finops_pipeline.db.tenants import (
    PIPELINE_ROLE,
    REPORTING_ROLE,
    ensure_tenant,
    tenant_transaction,
)
from finops_pipeline.db.urls import to_libpq_url, with_database
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret

pytestmark = pytest.mark.integration

DAY = dt.date(2025, 3, 1)


def seed(connection: psycopg.Connection, ring: KeyRing) -> dict[str, str]:
    """Two tenants, one account each, two cost rows and one run outcome each (as superuser)."""
    accounts = {}
    for tenant in ("tenant-a", "tenant-b"):
        ensure_tenant(connection, tenant)
        account_id = register_account(
            connection,
            ring,
            tenant_id=tenant,
            name=f"{tenant} prod",
            provider="aws",
            provider_account_id="123456789012",
            credentials=AwsAccessKeyCredentials(
                access_key_id="AKIAEXAMPLEKEY000001", secret_access_key=Secret("s3cr3t-" + tenant)
            ),
        )
        accounts[tenant] = account_id
        for service in ("Amazon EC2", "Amazon S3"):
            connection.execute(
                """
                INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service,
                    usage_type, unblended_cost, amortized_cost, net_unblended_cost,
                    usage_quantity, currency)
                VALUES (%s, %s, %s, 'aws', %s, 'Usage', 1, 1, 1, 1, 'USD')
                """,
                (tenant, account_id, DAY, service),
            )
        connection.execute(
            "INSERT INTO account_sync_runs (cloud_account_id, run_id, tenant_id, status) "
            "VALUES (%s, 'run-1', %s, 'success')",
            (account_id, tenant),
        )
    return accounts


@pytest.fixture
def login_role(database_url: str, connection: psycopg.Connection) -> Iterator[str]:
    """A LOGIN role that is a member of finops_reporting, as a dashboard would use."""
    name = f"finops_dash_{uuid.uuid4().hex[:10]}"
    connection.execute(f"CREATE ROLE {name} LOGIN")
    connection.execute(f"GRANT {REPORTING_ROLE} TO {name}")
    yield name
    connection.execute(f"DROP OWNED BY {name}")
    connection.execute(f"DROP ROLE {name}")


def connect_as(database_url: str, role: str) -> psycopg.Connection:
    conninfo = psycopg.conninfo.make_conninfo(to_libpq_url(database_url), user=role)
    return psycopg.connect(conninfo, autocommit=True)


def visible(connection: psycopg.Connection) -> dict[str, set[str]]:
    return {
        table: {
            row[0]
            for row in connection.execute(f"SELECT DISTINCT tenant_id FROM {table}").fetchall()
        }
        for table in ("cloud_accounts", "cost_data", "account_sync_runs", "tenants")
    }


def test_reporting_session_sees_only_its_tenant(
    database_url: str, connection: psycopg.Connection, key_ring: KeyRing, login_role: str
) -> None:
    seed(connection, key_ring)
    with connect_as(database_url, login_role) as dashboard:
        assert dashboard.execute("SELECT current_user").fetchone() == (login_role,)
        with tenant_transaction(dashboard, "tenant-a"):
            assert visible(dashboard) == {
                "cloud_accounts": {"tenant-a"},
                "cost_data": {"tenant-a"},
                "account_sync_runs": {"tenant-a"},
                "tenants": {"tenant-a"},
            }
            assert dashboard.execute("SELECT count(*) FROM cost_data").fetchone() == (2,)
        with tenant_transaction(dashboard, "tenant-b"):
            assert visible(dashboard)["cost_data"] == {"tenant-b"}


def test_reporting_session_without_a_tenant_sees_nothing(
    database_url: str, connection: psycopg.Connection, key_ring: KeyRing, login_role: str
) -> None:
    seed(connection, key_ring)
    with connect_as(database_url, login_role) as dashboard:
        assert visible(dashboard) == {
            "cloud_accounts": set(),
            "cost_data": set(),
            "account_sync_runs": set(),
            "tenants": set(),
        }
        # An empty tenant id is not a wildcard.
        with dashboard.transaction():
            dashboard.execute("SELECT set_config('app.tenant_id', '', true)")
            assert dashboard.execute("SELECT count(*) FROM cost_data").fetchone() == (0,)


def test_tenant_id_is_a_bound_parameter_not_sql(
    database_url: str, connection: psycopg.Connection, key_ring: KeyRing, login_role: str
) -> None:
    seed(connection, key_ring)
    with (
        connect_as(database_url, login_role) as dashboard,
        tenant_transaction(dashboard, "tenant-a' OR '1'='1"),
    ):
        assert dashboard.execute("SELECT count(*) FROM cost_data").fetchone() == (0,)


def test_reporting_role_is_read_only_and_cannot_read_ciphertext_or_external_ids(
    database_url: str, connection: psycopg.Connection, key_ring: KeyRing, login_role: str
) -> None:
    accounts = seed(connection, key_ring)
    with connect_as(database_url, login_role) as dashboard:
        for statement, params in [
            (
                "INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service, "
                "usage_type, unblended_cost, amortized_cost, net_unblended_cost, "
                "usage_quantity, currency) VALUES "
                "('tenant-b', %s, %s, 'aws', 'X', 'Y', 1, 1, 1, 1, 'USD')",
                (accounts["tenant-b"], DAY),
            ),
            ("DELETE FROM cost_data", None),
            ("UPDATE cloud_accounts SET status = 'disabled'", None),
            ("SELECT credentials_encrypted FROM cloud_accounts", None),
            ("SELECT external_id FROM tenants", None),
        ]:
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege),
                tenant_transaction(dashboard, "tenant-a"),
            ):
                dashboard.execute(statement, params)
    assert connection.execute("SELECT count(*) FROM cost_data").fetchone() == (4,)


def test_writes_for_another_tenant_are_rejected_by_the_policy(
    database_url: str, connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    """A role allowed to write (but not the pipeline) can only write its own tenant's rows."""
    accounts = seed(connection, key_ring)
    writer = f"finops_writer_{uuid.uuid4().hex[:10]}"
    connection.execute(f"CREATE ROLE {writer} NOLOGIN")
    connection.execute(f"GRANT SELECT, INSERT, UPDATE ON cost_data TO {writer}")
    insert = (
        "INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service, "
        "usage_type, unblended_cost, amortized_cost, net_unblended_cost, usage_quantity, "
        "currency) VALUES (%s, %s, %s, 'aws', 'Injected', 'Usage', 9, 9, 9, 9, 'USD')"
    )
    try:
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
            tenant_transaction(connection, "tenant-a"),
        ):
            connection.execute(f"SET LOCAL ROLE {writer}")
            connection.execute(insert, ("tenant-b", accounts["tenant-b"], DAY))
        # Moving an own row to another tenant is refused too.
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
            tenant_transaction(connection, "tenant-a"),
        ):
            connection.execute(f"SET LOCAL ROLE {writer}")
            connection.execute("UPDATE cost_data SET tenant_id = 'tenant-b'")
        with tenant_transaction(connection, "tenant-a"):
            connection.execute(f"SET LOCAL ROLE {writer}")
            connection.execute(insert, ("tenant-a", accounts["tenant-a"], DAY))
    finally:
        connection.execute(f"DROP OWNED BY {writer}")
        connection.execute(f"DROP ROLE {writer}")
    counts = dict(
        connection.execute("SELECT tenant_id, count(*) FROM cost_data GROUP BY 1").fetchall()
    )
    assert counts == {"tenant-a": 3, "tenant-b": 2}


def test_pooled_connection_does_not_keep_the_previous_tenant(
    database_url: str, connection: psycopg.Connection, key_ring: KeyRing, login_role: str
) -> None:
    seed(connection, key_ring)
    url = psycopg.conninfo.make_conninfo(to_libpq_url(database_url), user=login_role)
    engine = sa.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(url), pool_size=1, max_overflow=0
    )
    try:
        with psycopg_connection(engine) as first:
            pid = first.info.backend_pid
            with tenant_transaction(first, "tenant-a"):
                assert first.execute("SELECT count(*) FROM cost_data").fetchone() == (2,)
        with psycopg_connection(engine) as second:
            assert second.info.backend_pid == pid  # the same pooled session
            assert second.execute("SELECT current_setting('app.tenant_id', true)").fetchone() in {
                (None,),
                ("",),
            }
            assert second.execute("SELECT count(*) FROM cost_data").fetchone() == (0,)
            with tenant_transaction(second, "tenant-b"):
                assert visible(second)["cost_data"] == {"tenant-b"}
    finally:
        engine.dispose()


def test_pipeline_role_reads_and_writes_every_tenant(
    connection: psycopg.Connection, key_ring: KeyRing
) -> None:
    accounts = seed(connection, key_ring)
    with connection.transaction():
        connection.execute(f"SET LOCAL ROLE {PIPELINE_ROLE}")
        assert connection.execute("SELECT current_setting('app.tenant_id', true)").fetchone() in {
            (None,),
            ("",),
        }
        assert visible(connection)["cost_data"] == {"tenant-a", "tenant-b"}
        connection.execute(
            "UPDATE cloud_accounts SET status = 'disabled' WHERE id = %s", (accounts["tenant-b"],)
        )
        connection.execute(
            "DELETE FROM cost_data WHERE tenant_id = 'tenant-a' AND service = 'Amazon S3'"
        )
    assert connection.execute("SELECT count(*) FROM cost_data").fetchone() == (3,)


def test_migration_is_repeatable_with_roles_already_present(
    engine: sa.Engine, connection: psycopg.Connection
) -> None:
    from alembic import command

    from finops_pipeline.db.migrate import _alembic_config

    with engine.begin() as sa_connection:
        command.downgrade(_alembic_config(sa_connection), "0001")
    assert current_revision(engine) == "0001"
    assert connection.execute(
        "SELECT relrowsecurity FROM pg_class WHERE relname = 'cost_data'"
    ).fetchone() == (False,)
    upgrade_database(engine)  # the roles exist: creating them again must not fail
    assert current_revision(engine) == head_revision()
    flags = connection.execute(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relname IN ('cloud_accounts', 'cost_data', 'account_sync_runs', 'tenants') "
        "ORDER BY relname"
    ).fetchall()
    assert all(enabled and forced for _, enabled, forced in flags) and len(flags) == 4
    roles = connection.execute(
        "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles "
        "WHERE rolname IN (%s, %s) ORDER BY rolname",
        (PIPELINE_ROLE, REPORTING_ROLE),
    ).fetchall()
    assert roles == [(PIPELINE_ROLE, False, False), (REPORTING_ROLE, False, False)]


@pytest.fixture
def owned_database(server_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database owned by a new non-superuser LOGIN role: (url, role)."""
    suffix = uuid.uuid4().hex[:10]
    role, name = f"finops_owner_{suffix}", f"finops_owned_{suffix}"
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"CREATE DATABASE {name} OWNER {role}")
    url = with_database(server_url, name)
    yield url, role
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"DROP ROLE {role}")


def owner_engine(url: str, role: str) -> sa.Engine:
    conninfo = psycopg.conninfo.make_conninfo(to_libpq_url(url), user=role)
    return sa.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo), poolclass=sa.NullPool
    )


def test_a_non_superuser_owner_must_be_in_the_pipeline_role(
    owned_database: tuple[str, str], server_url: str, key_ring: KeyRing
) -> None:
    url, role = owned_database
    engine = owner_engine(url, role)
    try:
        # Without membership, and without the right to grant it, the migration stops with advice.
        with pytest.raises(sa.exc.DBAPIError, match=f"must be a member of {PIPELINE_ROLE}"):
            upgrade_database(engine)
        assert current_revision(engine) is None  # one transaction: nothing was applied

        with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
            admin.execute(f"GRANT {PIPELINE_ROLE} TO {role}")
        upgrade_database(engine)
        with psycopg_connection(engine) as owner:
            assert owner.execute(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ).fetchone() == (False, False)
            seed(owner, key_ring)  # the owner writes every tenant, as the pipeline must
            assert visible(owner)["cost_data"] == {"tenant-a", "tenant-b"}

        with psycopg.connect(to_libpq_url(server_url), autocommit=True) as admin:
            admin.execute(f"REVOKE {PIPELINE_ROLE} FROM {role}")
        with psycopg_connection(engine) as owner:
            # FORCE ROW LEVEL SECURITY: the owner itself now sees no tenant's rows.
            assert visible(owner)["cost_data"] == set()
            with tenant_transaction(owner, "tenant-b"):
                assert visible(owner)["cost_data"] == {"tenant-b"}
    finally:
        engine.dispose()
