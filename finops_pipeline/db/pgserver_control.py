"""Start or stop the embedded PostgreSQL server from a fresh, single-threaded process.

``finops_pipeline.db.embedded`` runs this module as ``python -m`` for every ``initdb``,
``pg_ctl start`` and ``pg_ctl stop``; nothing else in the project runs them. The reason is how
pgserver starts its commands. Run as root it calls ``subprocess.run(..., user="pgserver")``,
and with a user switch CPython cannot use ``vfork()``: it must really ``fork()`` the calling
process, which runs every ``pthread_atfork`` handler in the child. In the Dagster code server,
a multi-threaded gRPC process, gRPC's fork handlers then crash the child ("Other threads are
currently calling into gRPC, skipping fork() handlers", then ``pg_ctl ... died with SIGSEGV``),
so every sensor tick failed. Started from a threaded process *without* a user switch, this
module's interpreter is spawned with ``vfork()`` (no fork handlers run), and its own
``fork()`` for ``pg_ctl`` happens in a process with one thread.

Usage: ``python -m finops_pipeline.db.pgserver_control start|stop PGDATA``. Exit 0 on success;
otherwise one line on stderr and exit 1.
"""

from __future__ import annotations

import atexit
import os
import sys
import warnings
from pathlib import Path

#: The OS user pgserver runs PostgreSQL as when started by root.
PGSERVER_OS_USER = "pgserver"


def _pgserver_user() -> str | None:
    return PGSERVER_OS_USER if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def start(pgdata: Path) -> None:
    """Create (``initdb``) and start the server on ``pgdata`` unless it already runs.

    pgserver does the root-only preparation (the ``pgserver`` OS user, folder permissions,
    ``chown``), which ``embedded._check_root_safety`` has already vetted.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

    # cleanup_mode=None: this process exiting must not stop the server it just started; the
    # processes that use it keep their own count (embedded.py).
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    server._cleanup()  # takes this helper out of pgserver's own pid list
    atexit.unregister(server._cleanup)


def stop(pgdata: Path) -> None:
    """Stop the server on ``pgdata`` (``pg_ctl -w stop``: a fast shutdown, waiting for it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver._commands import pg_ctl

    pg_ctl(["-w", "stop"], pgdata=pgdata, user=_pgserver_user())


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        sys.stderr.write("usage: python -m finops_pipeline.db.pgserver_control start|stop PGDATA\n")
        return 2
    action, pgdata = argv[0], Path(argv[1])
    try:
        (start if action == "start" else stop)(pgdata)
    except Exception as error:
        detail = " ".join(str(error).split())
        sys.stderr.write(f"{type(error).__name__}: {detail}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
