"""Applying and checking the Alembic migrations."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from finops_pipeline.db.tenants import PIPELINE_ROLE
from finops_pipeline.errors import ConfigurationError, DatabaseError

_MIGRATIONS = Path(__file__).with_name("migrations")
# Serialises concurrent upgrades (webserver, daemon and run workers may start together).
_MIGRATION_LOCK_KEY = 0x46494E4F5053  # "FINOPS"
# Not Alembic's default "alembic_version": Dagster's own Postgres storage keeps a table of that
# name, and operators may put both in one database.
VERSION_TABLE = "finops_schema_version"
_INSUFFICIENT_PRIVILEGE = "42501"


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
    """The migration the database is at, or None for an empty database.

    Raises:
        DatabaseError: the login may not read the version table, with what to do: grant it
            ``finops_pipeline``, or (it has the role) upgrade the schema to migration 0004,
            which lets that role read the version.
    """
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        try:
            return context.get_current_revision()
        except sa.exc.ProgrammingError as error:
            if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
                raise
            refusal = str(error.orig).strip().splitlines()[0]
            connection.rollback()
            user, member = connection.execute(
                sa.text("SELECT current_user, pg_has_role(current_user, :role, 'MEMBER')"),
                {"role": PIPELINE_ROLE},
            ).one()
    advice = (
        f"The login {user} has the {PIPELINE_ROLE} role, but the schema predates migration "
        "0004, which lets that role read it: run `finops db upgrade` as the schema owner."
        if member
        else f"The login {user} needs the {PIPELINE_ROLE} role: GRANT {PIPELINE_ROLE} TO {user} "
        "(README, Database roles)."
    )
    raise DatabaseError(
        f"The database refused to read {VERSION_TABLE} (InsufficientPrivilege): {refusal}. "
        + advice
    )


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
