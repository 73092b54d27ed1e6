"""The Postgres resource: owns the engine, hands out connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from finops_pipeline.db.engine import create_finops_engine, psycopg_connection


class PostgresResource(dg.ConfigurableResource):
    """The database holding ``cloud_accounts`` and ``cost_data``.

    With no ``database_url`` it uses ``DATABASE_URL`` from the run's environment, and without
    that the embedded PostgreSQL server under ``FINOPS_HOME``. Nothing connects until a run
    starts.
    """

    database_url: str | None = Field(
        default=None,
        repr=False,
        description="PostgreSQL URL; bind it with dg.EnvVar('DATABASE_URL'). Empty: embedded.",
    )

    _engine: sa.Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = create_finops_engine(self.database_url or None)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close the pooled connections; the next use opens new ones."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = create_finops_engine(self.database_url or None)
        return self._engine

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A psycopg 3 connection in autocommit mode; use ``connection.transaction()``."""
        with psycopg_connection(self.engine) as connection:
            yield connection
