"""Finding ``psql`` and building its command line for ``finops db shell``."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from finops_pipeline.db.embedded import pgserver_bin_folder
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.errors import ConfigurationError

PSQL_MISSING = (
    "psql was not found on PATH. Install the PostgreSQL client (Debian/Ubuntu: apt-get install "
    "postgresql-client; macOS: brew install libpq), or connect any client to the URL that "
    "`finops db url` prints."
)


def find_psql(path: str | None = None) -> str:
    """``psql`` from ``PATH``, else the one shipped in the pgserver wheel.

    Args:
        path: Search path to use instead of ``PATH``.

    Raises:
        ConfigurationError: Neither exists.
    """
    found = shutil.which("psql", path=path)
    if found:
        return found
    bundled = pgserver_bin_folder() / "psql"
    if bundled.is_file():
        return str(bundled)
    raise ConfigurationError(PSQL_MISSING)


def psql_command(psql: str, url: str) -> tuple[list[str], Mapping[str, str]]:
    """The argv and extra environment that open ``psql`` on ``url``.

    The password goes in ``PGPASSWORD``, never on the command line, where ``ps`` would show it.

    Returns:
        ``([psql, conninfo], {"PGPASSWORD": ...})``; the mapping is empty without a password.
    """
    params = conninfo_to_dict(to_libpq_url(url))
    password = params.pop("password", None)
    environment = {"PGPASSWORD": str(password)} if password else {}
    return [psql, make_conninfo(**params)], environment
