"""Shared fixtures: a fresh migrated database per test, keys, and moto-backed Cost Explorer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import sqlalchemy as sa
from moto import mock_aws

from finops_pipeline.db.embedded import embedded_database_url
from finops_pipeline.db.engine import create_finops_engine, psycopg_connection
from finops_pipeline.db.migrate import upgrade_database
from finops_pipeline.db.urls import to_libpq_url, with_database
from finops_pipeline.security.ciphertext import KeyRing, generate_key
from tests.ce_responses import StrictMotoCostExplorer

# Tests must never pick up a developer's real settings.
for _name in ("DATABASE_URL", "ENCRYPTION_KEY", "ENCRYPTION_KEYS_PREVIOUS", "AWS_PROFILE"):
    os.environ.pop(_name, None)
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing-ambient-not-used")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing-ambient-not-used")
# Step retries keep their count and backoff, without the production delay between attempts.
os.environ.setdefault("FINOPS_RETRY_DELAY_SECONDS", "0")
# Tests that count Cost Explorer requests exactly predate the reconciliation's extra ungrouped
# request; the tests of reconciliation switch it on (FINOPS_RECONCILE_AWS=1).
os.environ.setdefault("FINOPS_RECONCILE_AWS", "0")

# Under /var/tmp, whose parents are world-traversable, so the embedded server opens no folder.
EMBEDDED_TEST_HOME = Path(f"/var/tmp/finops-tests-{os.getuid()}")


@pytest.fixture(scope="session")
def server_url() -> str:
    """The test server: FINOPS_TEST_DATABASE_URL, else the embedded PostgreSQL."""
    configured = os.environ.get("FINOPS_TEST_DATABASE_URL", "").strip()
    if configured:
        return configured
    return embedded_database_url(EMBEDDED_TEST_HOME)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(to_libpq_url(url), autocommit=True)


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    """A migrated database that each test's database is copied from."""
    name = f"finops_template_{os.getpid()}"
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(
        with_database(to_libpq_url(server_url), name).replace(
            "postgresql://", "postgresql+psycopg://", 1
        ),
        poolclass=sa.pool.NullPool,
    )
    upgrade_database(engine)
    engine.dispose()
    yield name
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database for one test, so tests never see each other's rows."""
    name = f"finops_test_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield with_database(server_url, name)
    with _admin(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_finops_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: sa.Engine) -> Iterator[psycopg.Connection]:
    with psycopg_connection(engine) as connection:
        yield connection


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An ephemeral Dagster instance for in-process runs, discarded after the test."""
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def encryption_key() -> str:
    return generate_key()


@pytest.fixture
def key_ring(encryption_key: str) -> KeyRing:
    return KeyRing.from_strings(encryption_key)


@pytest.fixture
def moto_ce(monkeypatch: pytest.MonkeyPatch) -> Iterator[StrictMotoCostExplorer]:
    """moto's Cost Explorer checking every request it answers; fails the test on a mismatch."""
    fake = StrictMotoCostExplorer().install(monkeypatch)
    yield fake
    assert not fake.mismatches, "Cost Explorer was asked something else:\n" + "\n".join(
        fake.mismatches
    )


@pytest.fixture
def aws(moto_ce: StrictMotoCostExplorer) -> Iterator[None]:
    """moto's AWS (STS, IAM, Cost Explorer) for the test's duration."""
    with mock_aws():
        yield


@pytest.fixture
def sts_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's AssumeRole enforce trust policies and external ids as STS does."""
    from tests.aws_iam import simulate_sts_trust

    simulate_sts_trust(monkeypatch)
