"""Creating the SQLAlchemy engine and handing out psycopg 3 connections."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa

from finops_pipeline.db.embedded import resolve_database_url
from finops_pipeline.db.migrate import require_current_schema, upgrade_database
from finops_pipeline.db.urls import to_psycopg_url
from finops_pipeline.errors import DatabaseError


def create_finops_engine(
    database_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    migrate: bool | None = None,
) -> sa.Engine:
    """An engine on ``database_url``, ``DATABASE_URL``, or the embedded server.

    The embedded server is migrated on first use. An external server is only checked: its
    schema is upgraded on purpose with ``finops db upgrade``.

    Args:
        database_url: Overrides the environment.
        environ: Where to read ``DATABASE_URL`` and ``FINOPS_HOME``; defaults to ``os.environ``.
        migrate: Force (True) or skip (False) the upgrade; None picks by server kind.
    """
    if database_url:
        url, embedded = database_url, False
    else:
        url, embedded = resolve_database_url(environ)
    engine = sa.create_engine(to_psycopg_url(url), pool_pre_ping=True, pool_size=5)
    try:
        if migrate or (migrate is None and embedded):
            upgrade_database(engine)
        elif migrate is None:
            require_current_schema(engine)
    except sa.exc.OperationalError as error:
        engine.dispose()
        raise DatabaseError(
            f"Cannot reach the database ({type(error.orig).__name__}). Check DATABASE_URL, or "
            "unset it to use the embedded server."
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def psycopg_connection(engine: sa.Engine) -> Iterator[psycopg.Connection]:
    """A pooled psycopg 3 connection in autocommit mode.

    Autocommit makes every ``connection.transaction()`` block a real transaction rather than a
    savepoint inside an implicit one that the pool would roll back.
    """
    pooled = engine.raw_connection()
    connection = pooled.driver_connection
    assert isinstance(connection, psycopg.Connection)
    try:
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            connection.rollback()
        connection.autocommit = True
        yield connection
    finally:
        if connection.closed:
            # Lost (a terminated backend, a server restart): never hand it out again, and
            # skip the pool's reset, which would fail on it with a logged traceback.
            pooled.invalidate()
        else:
            try:
                if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    connection.rollback()
                connection.autocommit = False
            finally:
                pooled.close()
