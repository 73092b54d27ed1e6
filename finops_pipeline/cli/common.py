"""What every ``finops`` command group shares: exits, day parsing, the database, tenants."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from finops_pipeline.errors import FinopsError
from finops_pipeline.providers import typed_error

OUTPUT_OPTION = click.option(
    "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def parse_day(value: str, flag: str) -> dt.date:
    """A ``YYYY-MM-DD`` option value; anything else is a usage error naming ``flag``."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a YYYY-MM-DD date", param_hint=flag) from None


def error_line(error: BaseException) -> str:
    """One line for any error: typed errors as they are, SDK, database and network errors
    translated; the secrets the process knows are masked."""
    from finops_pipeline.security.redaction import GLOBAL_REDACTOR

    typed = typed_error(error)
    if typed is None:
        line = f"unexpected {type(error).__name__}: {error}. Run with -v for the traceback."
    else:
        line = f"{typed} [{type(typed).__name__}]"
    return GLOBAL_REDACTOR.redact(" ".join(line.split()))


def one_line(text: str | None) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join((text or "").split())


def verbose() -> bool:
    """Whether ``finops -v`` was given."""
    return bool(click.get_current_context().find_root().params.get("verbose"))


def configured_database_url() -> str:
    """``DATABASE_URL``, or "" when the embedded server is in use."""
    return os.environ.get("DATABASE_URL", "").strip()


@contextmanager
def database() -> Iterator[Any]:
    """A psycopg connection to the database in use (migrated; the embedded one started)."""
    from finops_pipeline.db.engine import create_finops_engine, psycopg_connection

    engine = create_finops_engine()
    try:
        with psycopg_connection(engine) as connection:
            yield connection
    finally:
        engine.dispose()


def tenant_id_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The callback of every option that takes a tenant: a blank one is a usage error (exit 2)."""
    from finops_pipeline.db.tenants import check_tenant_id

    if value is None:
        return None
    try:
        return check_tenant_id(value)
    except FinopsError as error:
        raise click.BadParameter(str(error)) from None
