"""``finops db``: the schema, the connection URL, psql, and stopping the embedded server."""

from __future__ import annotations

import os
import sys

import click

from finops_pipeline.cli.common import configured_database_url, fail


@click.group("db")
def db() -> None:
    """The database: schema, connection URL, psql, and stopping the embedded server."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to DATABASE_URL (or the embedded server)."""
    from finops_pipeline.db.engine import create_finops_engine
    from finops_pipeline.db.migrate import current_revision

    engine = create_finops_engine(migrate=True)
    try:
        click.echo(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@db.command("url")
def db_url() -> None:
    """Print the URL of the database in use (DATABASE_URL or the embedded one), password masked."""
    from finops_pipeline.config import finops_home
    from finops_pipeline.db.embedded import PGDATA_DIRNAME, running_postmaster, socket_url
    from finops_pipeline.db.urls import redact_url

    configured = configured_database_url()
    if configured:
        click.echo(redact_url(configured))
        click.echo("(from DATABASE_URL)", err=True)
        return
    pgdata = finops_home() / PGDATA_DIRNAME
    postmaster = running_postmaster(pgdata.resolve())
    click.echo(socket_url(postmaster.socket_dir if postmaster else pgdata.resolve()))
    if postmaster is None:
        click.echo(
            f"(the embedded server in {pgdata} is not running now: any finops command, "
            "`finops ui` or `finops db shell` starts it, and it stops when the last of them exits)",
            err=True,
        )


@db.command("shell")
def db_shell() -> None:
    """Open psql on the database in use (starting the embedded server for the session)."""
    import signal
    import subprocess

    from finops_pipeline.db.embedded import resolve_database_url
    from finops_pipeline.db.psql import find_psql, psql_command

    psql = find_psql()
    url, _embedded = resolve_database_url()  # the embedded server stays up until psql exits
    argv, extra_env = psql_command(psql, url)
    child = subprocess.Popen(argv, env={**os.environ, **extra_env})
    # Ctrl-C belongs to psql (it cancels the running query); this process only waits.
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    sys.exit(code)


@db.command("stop")
@click.option("--force", is_flag=True, help="Stop it even while other processes use it.")
def db_stop(force: bool) -> None:
    """Stop the embedded PostgreSQL server (not a DATABASE_URL server)."""
    from finops_pipeline.db.embedded import stop_server

    if configured_database_url():
        fail(
            "DATABASE_URL is set, so the embedded server is not in use; `finops db stop` only "
            "stops the embedded server. Stop your own server with its own tools, or unset "
            "DATABASE_URL."
        )
    report = stop_server(force=force)
    dropped = (
        f"; dropped {report.dead_users_dropped} dead process(es) from its users"
        if report.dead_users_dropped
        else ""
    )
    if not report.was_running:
        click.echo(f"The embedded PostgreSQL server in {report.pgdata} is not running{dropped}.")
        return
    users = (
        f" (still used by {', '.join(report.live_users_stopped)})"
        if report.live_users_stopped
        else ""
    )
    click.echo(
        f"Stopped the embedded PostgreSQL server in {report.pgdata} (pid {report.server_pid})"
        f"{users}{dropped}."
    )
