"""The embedded PostgreSQL server used when ``DATABASE_URL`` is not set.

It is a real PostgreSQL 16 shipped in the ``pgserver`` wheel (0.1.4). Facts this module relies
on, read from ``pgserver/postgres_server.py`` and ``pgserver/utils.py``:

* The server listens on a Unix socket only (``-h ""``), placed in the data folder. When
  ``<datadir>/.s.PGSQL.5432`` is longer than a Unix socket path may be (107 bytes on Linux),
  pgserver puts the socket under ``platformdirs.user_runtime_path("python_PostgresServer")``
  instead (``$XDG_RUNTIME_DIR/...``, or ``/tmp/runtime-<uid>/...`` when that is unset).
* Several processes can share one data folder. Each process that calls ``get_server`` appends
  its pid to ``<datadir>/.handle_pids.json`` and removes it in an ``atexit`` hook; with
  ``cleanup_mode="stop"`` the process that removes the *last* pid stops the server
  (``pg_ctl -w stop``, i.e. a fast shutdown). ``cleanup_mode=None`` never stops it and
  ``"delete"`` also deletes the data folder.
* Run as root (``os.geteuid() == 0``), on every start or attach, pgserver:

  1. creates an OS user ``pgserver`` with ``useradd -s /bin/bash pgserver`` if it is missing;
  2. adds ``g+rx,o+rx`` to **every** parent folder of the data folder, up to ``/``;
  3. does the same to every parent of its own ``pginstall/bin`` folder (the virtualenv), and
     recursively adds ``g+rx,o+rx`` to ``pginstall/bin`` and ``g+r,o+r`` to ``pginstall/lib``;
  4. when the socket had to move to the runtime folder, adds ``g+rx,o+rx`` to every parent of
     that folder and makes the socket folder itself mode 0777;
  5. ``chown``\\ s the data folder to ``pgserver`` and runs ``initdb``/``postgres`` as that user.

  Step 2 turned ``/root`` from 0700 into 0755 on a test machine. This module therefore refuses,
  as root, to start when step 2, 3 or 4 would change the mode of any folder, and defaults
  ``FINOPS_HOME`` for root to ``/var/lib/finops``, whose parents are already ``rwxr-xr-x``.
  A non-root user is not affected: pgserver changes no permissions and creates no user then.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import stat
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import quote

from finops_pipeline.errors import EmbeddedPostgresError

if TYPE_CHECKING:
    from pgserver import PostgresServer

logger = logging.getLogger(__name__)

#: Data folder name inside ``FINOPS_HOME``.
PGDATA_DIRNAME = "pgdata"

#: Default home for root. Its parents (``/var``, ``/var/lib``) are 0755 on every mainstream
#: distribution, so pgserver's chmod of the data folder's parents changes nothing.
ROOT_DEFAULT_HOME = Path("/var/lib/finops")

_LOCK_FILENAME = ".pgserver.lock"

# pgserver's pg_ctl start times out after 10 s; a second process waiting on our lock may also
# wait through an initdb, so allow a generous margin before giving up.
_LOCK_TIMEOUT_SECONDS = 120.0

# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH_BYTES = 107
_SOCKET_NAME = ".s.PGSQL.5432"

# The bits pgserver's ensure_prefix_permissions() adds to every parent folder.
_PGSERVER_PREFIX_BITS = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH

# One handle per data folder for this process, with the pid that registered it. A child made by
# fork() inherits the dict but is not in pgserver's pid list, so it must register itself.
_servers: dict[Path, tuple[int, PostgresServer]] = {}
_servers_lock = threading.Lock()


def _is_root() -> bool:
    """Return True when the process runs with effective uid 0."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def finops_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return the folder that holds the embedded server's data and lock file.

    ``FINOPS_HOME`` wins when set. Otherwise a normal user gets ``~/.finops``. Root gets
    ``/var/lib/finops`` instead of ``/root/.finops``: pgserver, run as root, makes every
    parent of its data folder group/world readable and traversable, which would silently open
    up ``/root`` (0700 -> 0755). ``/var`` and ``/var/lib`` are already 0755, so nothing changes.

    Args:
        environ: Environment to read; defaults to ``os.environ``.

    Returns:
        An absolute path; the folder may not exist yet.
    """
    env = os.environ if environ is None else environ
    configured = env.get("FINOPS_HOME", "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    if _is_root():
        return ROOT_DEFAULT_HOME
    return Path.home() / ".finops"


def _parents(path: Path) -> list[Path]:
    """Return the existing parents of ``path``, nearest first, as pgserver walks them.

    Args:
        path: An absolute path.

    Returns:
        Parent folders that exist; folders we are yet to create will be 0755 anyway.
    """
    return [parent for parent in path.parents if parent.exists()]


def _folders_pgserver_would_open(pgdata: Path) -> list[tuple[Path, int]]:
    """List the folders whose mode pgserver would widen when started as root on ``pgdata``.

    Args:
        pgdata: Resolved data folder.

    Returns:
        ``(folder, current mode)`` for every folder missing one of ``g+rx,o+rx``.
    """
    # pgserver also walks the parents of its own binaries' folder, inside the virtualenv.
    bin_path = Path(_import_pgserver()._commands.POSTGRES_BIN_PATH)
    candidates = _parents(pgdata) + _parents(bin_path)
    problems: list[tuple[Path, int]] = []
    seen: set[Path] = set()
    for folder in candidates:
        if folder in seen:
            continue
        seen.add(folder)
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & _PGSERVER_PREFIX_BITS != _PGSERVER_PREFIX_BITS:
            problems.append((folder, mode))
    return problems


def _check_root_safety(pgdata: Path) -> None:
    """Refuse to let pgserver, run as root, change the permissions of existing folders.

    Args:
        pgdata: Resolved data folder (may not exist yet).

    Raises:
        EmbeddedPostgresError: pgserver would chmod a folder, or would move its socket to the
            runtime folder (and chmod that folder's parents) because the path is too long.
    """
    socket_path = pgdata / _SOCKET_NAME
    if len(os.fsencode(str(socket_path))) > _MAX_SOCKET_PATH_BYTES:
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL data folder path {pgdata} is too long for a Unix socket "
            f"({_MAX_SOCKET_PATH_BYTES} bytes max for {socket_path}). Run as root, pgserver would "
            "then put the socket under the runtime folder and make that folder and its parents "
            "world-readable. Set FINOPS_HOME to a shorter path such as /var/lib/finops, or set "
            "DATABASE_URL to use an external PostgreSQL server."
        )
    problems = _folders_pgserver_would_open(pgdata)
    if problems:
        listed = ", ".join(f"{folder} (mode {mode:o})" for folder, mode in problems)
        raise EmbeddedPostgresError(
            "Refusing to start the embedded PostgreSQL server as root: pgserver would chmod "
            f"g+rx,o+rx every parent folder of its data folder {pgdata} and of its own install, "
            f"which would open up {listed} to every user. Set FINOPS_HOME=/var/lib/finops (or "
            "another folder whose parents are already world-traversable), run as a normal "
            "user, or set DATABASE_URL to use an external PostgreSQL server."
        )


def _make_dirs(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0755.

    The mode is set explicitly because ``mkdir(mode=...)`` is filtered by the umask; folders
    that already exist are left exactly as they are.

    Args:
        path: Folder to create.
    """
    missing: list[Path] = []
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            # Another process may create it between our check and here.
            folder.mkdir(mode=0o755)
            folder.chmod(0o755)


@contextlib.contextmanager
def _startup_lock(home: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the home folder's lock file.

    pgserver has its own lock, but in ``$XDG_RUNTIME_DIR``, which differs between processes
    started with different environments, and its ``get_server`` creates the data folder with
    ``mkdir(exist_ok=False)`` *before* taking that lock, so two first starts can race.

    Args:
        home: The FINOPS_HOME folder.

    Yields:
        Nothing; the lock is held inside the ``with`` block.

    Raises:
        EmbeddedPostgresError: The lock was not obtained within the timeout.
    """
    lock_path = home / _LOCK_FILENAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + _LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EmbeddedPostgresError(
                        f"Timed out after {_LOCK_TIMEOUT_SECONDS:.0f} s waiting for another "
                        f"process to start the embedded PostgreSQL server (lock {lock_path}). "
                        "Check for a stuck finops or dagster process, or set DATABASE_URL to "
                        "use an external PostgreSQL server."
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _import_pgserver() -> ModuleType:
    """Import pgserver, silencing platformdirs' warning about an unset XDG_RUNTIME_DIR.

    pgserver computes its runtime folder at import time; in containers XDG_RUNTIME_DIR is
    usually unset and platformdirs then warns on every import, which is noise for our users.

    Returns:
        The ``pgserver`` module.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
        import pgserver._commands

    return pgserver


def _register_this_process(server: PostgresServer) -> None:
    """Add this process to pgserver's on-disk list of processes using ``server``.

    Needed after ``fork()``: the child inherits pgserver's handle (and its ``atexit`` hook)
    but not a place in the pid list, so the parent exiting would stop the server under it.

    Args:
        server: The inherited handle.
    """
    with server._lock:
        server.global_process_id_list.get_and_add(os.getpid())


def _socket_url(server: PostgresServer) -> str:
    """Build the libpq URL of a running pgserver instance.

    pgserver's own ``get_uri`` does not percent-encode the socket folder; we do, so a data
    folder with a space, ``&`` or ``%`` in its path still yields a valid URL.

    Args:
        server: A started server.

    Returns:
        ``postgresql://postgres:@/postgres?host=<socket folder>``.
    """
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        # pgserver only listens on TCP on Windows, which this project does not support.
        return server.get_uri()
    return f"postgresql://postgres:@/postgres?host={quote(str(info.socket_dir), safe='/')}"


def embedded_database_url(home: Path | None = None) -> str:
    """Start, or attach to, the embedded PostgreSQL server and return its URL.

    The data folder is ``home / "pgdata"``. The first call in a process starts the server (or
    attaches to one another process started) under an exclusive lock on
    ``home / ".pgserver.lock"``, so two processes starting at once cannot race; later calls
    return the cached handle's URL. The handle uses ``cleanup_mode="stop"``: pgserver counts
    the processes using the folder and only the last one to exit stops the server, so the
    Dagster webserver, daemon and run workers can come and go independently. A process that
    dies without running ``atexit`` hooks (SIGKILL, ``os._exit``) leaves its pid behind and the
    server then simply keeps running; the next start attaches to it.

    Args:
        home: FINOPS_HOME folder; defaults to :func:`finops_home`. Created (mode 0755, only the
            missing folders) if needed.

    Returns:
        A libpq URL, ``postgresql://postgres:@/postgres?host=<socket folder>``.

    Raises:
        EmbeddedPostgresError: Running as root and pgserver would widen the permissions of an
            existing folder, or the server could not be started.
    """
    home = (finops_home() if home is None else home).expanduser().absolute()
    pgdata = (home / PGDATA_DIRNAME).resolve()

    with _servers_lock:
        cached = _servers.get(pgdata)
        if cached is not None:
            pid, server = cached
            if pid != os.getpid():
                _register_this_process(server)
                _servers[pgdata] = (os.getpid(), server)
            return _socket_url(server)

        # Check before creating anything, so a refusal leaves the file system untouched.
        if _is_root():
            _check_root_safety(pgdata)

        try:
            _make_dirs(home)
            with _startup_lock(home):
                pgserver = _import_pgserver()
                server = pgserver.get_server(pgdata, cleanup_mode="stop")
        except EmbeddedPostgresError:
            raise
        except Exception as exc:
            raise EmbeddedPostgresError(
                f"Could not start the embedded PostgreSQL server in {pgdata} "
                f"({type(exc).__name__}: {exc}). Its log is {pgdata / 'log'}. Fix the cause, "
                "or set DATABASE_URL to use an external PostgreSQL server."
            ) from exc

        _servers[pgdata] = (os.getpid(), server)
        url = _socket_url(server)
        logger.info("Embedded PostgreSQL server ready, data folder %s", pgdata)
        return url


def stop_embedded_server(home: Path | None = None) -> None:
    """Release this process's handle on the embedded server.

    The server stops only if no other process still uses it (pgserver's reference count).
    Mostly for tests, which must stop a server before deleting its data folder.

    Args:
        home: FINOPS_HOME folder; defaults to :func:`finops_home`.
    """
    home = (finops_home() if home is None else home).expanduser().absolute()
    pgdata = (home / PGDATA_DIRNAME).resolve()
    with _servers_lock:
        cached = _servers.pop(pgdata, None)
    if cached is None:
        return
    server = cached[1]
    server.cleanup()
    # When other processes still use the server, pgserver keeps this process's handle in its
    # own cache and atexit list; drop both so a later start registers this process again.
    type(server)._instances.pop(pgdata, None)
    atexit.unregister(server._cleanup)


def resolve_database_url(environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """Return the database URL to use and whether it is the embedded server.

    Args:
        environ: Environment to read; defaults to ``os.environ``.

    Returns:
        ``(url, is_embedded)``: ``DATABASE_URL`` when set and non-empty, else the embedded
        server's libpq URL (starting it if needed).

    Raises:
        EmbeddedPostgresError: The embedded server was needed and could not be started.
    """
    env = os.environ if environ is None else environ
    configured = env.get("DATABASE_URL", "").strip()
    if configured:
        return configured, False
    return embedded_database_url(finops_home(env)), True
