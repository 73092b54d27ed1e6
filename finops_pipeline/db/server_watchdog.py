"""Stop the embedded PostgreSQL server once every process using it has died.

The last user of the embedded server stops it as it exits (``embedded._release``). A user
killed with SIGKILL, or by the OOM killer, never runs that code: if it was the last one, the
server would run on with no one to stop it, holding the data folder, until ``finops db stop``.
That happens for real when a person gives up on a slow shutdown of ``dagster dev`` and kills
what is left. So whoever starts the server also starts this watchdog beside it: a small
process in its own session (a signal to the Dagster processes' group does not reach it) that
checks the users list every few seconds and, once no user is alive, stops the server and exits.
It also exits when the server stops by other means, or its data folder is deleted.

Usage: ``python -m finops_pipeline.db.server_watchdog HOME PGDATA SECONDS``, SECONDS between
two looks (``FINOPS_EMBEDDED_WATCHDOG_SECONDS``, 2 by default, ``off`` for no watchdog).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

from finops_pipeline.db import embedded

logger = logging.getLogger(__name__)


def server_is_orphaned(home: Path, pgdata: Path) -> bool | None:
    """One check. True: no live user was left, the server was stopped. False: users remain.
    None: the server is gone (stopped by others, or its folder deleted); nothing to watch."""
    if not pgdata.is_dir() or embedded.running_postmaster(pgdata) is None:
        return None
    with embedded.startup_lock(home):
        if embedded.running_postmaster(pgdata) is None:
            return None
        live, dropped = embedded.live_server_users(pgdata)
        if live:
            return False
        embedded.write_server_users(pgdata, [])
        embedded.run_control("stop", pgdata)
    logger.info(
        "Stopped the embedded PostgreSQL server in %s: its %d user(s) had died without stopping it",
        pgdata,
        dropped,
    )
    return True


def watch(home: Path, pgdata: Path, *, interval: float) -> None:
    """Check every ``interval`` seconds until the server is stopped, by us or by others."""
    while True:
        time.sleep(interval)
        try:
            if server_is_orphaned(home, pgdata) is not False:
                return
        except embedded.EmbeddedPostgresError as error:
            # A busy lock or a failed stop: try again at the next look.
            logger.warning("%s", error)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(
            "usage: python -m finops_pipeline.db.server_watchdog HOME PGDATA SECONDS\n"
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        watch(Path(argv[0]), Path(argv[1]), interval=float(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
