"""Alembic environment: runs on the connection handed over by finops_pipeline.db.migrate."""

from __future__ import annotations

from alembic import context


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        transactional_ddl=True,
        version_table=context.config.attributes["version_table"],
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("Offline SQL generation is not supported; use `finops db upgrade`.")
run_migrations_online()
