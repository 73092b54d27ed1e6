"""``finops ui``: the Dagster UI (``dagster dev``) on the local instance the CLI uses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
def ui(host: str, port: int) -> None:
    """Open the Dagster UI (dagster dev) on the local instance the CLI and the demo use.

    Ctrl-C stops it. On the embedded default the database server is started here, before
    Dagster's processes, and kept until they exit, so they only connect to it.
    """
    from finops_pipeline.cli.demo import ensure_instance_config, ui_environment, ui_workspace
    from finops_pipeline.config import finops_home
    from finops_pipeline.db.engine import create_finops_engine

    env = ui_environment()
    ensure_instance_config(Path(env["DAGSTER_HOME"]))
    workspace = ui_workspace(Path(env["DAGSTER_HOME"]))
    if not env.get("DATABASE_URL", "").strip():
        click.echo(f"Database: embedded PostgreSQL in {finops_home(env) / 'pgdata'}", err=True)
        # Starts (and migrates) the server; this process stays one of its users until it exits.
        create_finops_engine(environ=env).dispose()
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace)]
    command += ["-h", host, "-p", str(port)]
    click.echo(f"DAGSTER_HOME={env['DAGSTER_HOME']} {' '.join(command[1:])}", err=True)
    sys.exit(run_in_foreground(command, env))


def run_in_foreground(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` as a child and wait for it, passing termination signals on.

    Ctrl-C reaches the child from the terminal (same process group), so SIGINT is only
    waited out here; SIGTERM and SIGHUP, which may be sent to this process alone, are
    forwarded. Waiting (rather than exec) keeps this process alive, so the embedded server
    it holds is released, and stopped if no one else uses it, only after the child is gone.
    """
    import signal
    import subprocess

    # A shell that starts a background job ignores SIGINT in it, and the ignored state is
    # inherited; dagster dev maps SIGTERM onto its SIGINT handler, so it could then never stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: Any) -> None:
        if signum != signal.SIGINT:
            child.send_signal(signum)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in handled}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
