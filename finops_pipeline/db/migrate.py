"""Applying and checking the Alembic migrations."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from finops_pipeline.errors import ConfigurationError

_MIGRATIONS = Path(__file__).with_name("migrations")
# Serialises concurrent upgrades (webserver, daemon and run workers may start together).
_MIGRATION_LOCK_KEY = 0x46494E4F5053  # "FINOPS"
# Not Alembic's default "alembic_version": Dagster's own Postgres storage keeps a table of that
# name, and operators may put both in one database.
VERSION_TABLE = "finops_schema_version"


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def head_revision() -> str:
    """The newest migration shipped with this release."""
    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade_database(engine: sa.Engine) -> str:
    """Apply every pending migration in one transaction; returns the new revision."""
    with engine.begin() as connection:
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
        )
        command.upgrade(_alembic_config(connection), "head")
    return head_revision()


def require_current_schema(engine: sa.Engine) -> None:
    """Fail with instructions when the database is behind this release."""
    current = current_revision(engine)
    if current != head_revision():
        raise ConfigurationError(
            f"The database schema is at revision {current or 'none'}, but this release needs "
            f"{head_revision()}. Run `finops db upgrade` with the same DATABASE_URL."
        )
