"""The embedded PostgreSQL server used when ``DATABASE_URL`` is not set.

It is a real PostgreSQL 16 shipped in the ``pgserver`` wheel (0.1.4). Facts this module relies
on, read from ``pgserver/postgres_server.py``, ``pgserver/_commands.py`` and
``pgserver/utils.py``:

* The server listens on a Unix socket only (``-h ""``), placed in the data folder. When
  ``<datadir>/.s.PGSQL.5432`` is longer than a Unix socket path may be (107 bytes on Linux),
  pgserver puts the socket under ``platformdirs.user_runtime_path("python_PostgresServer")``
  instead (``$XDG_RUNTIME_DIR/...``, or ``/tmp/runtime-<uid>/...`` when that is unset).
* pgserver runs ``initdb`` and ``pg_ctl`` with ``subprocess.run``; as root with
  ``user="pgserver"``. A user switch makes CPython ``fork()`` the calling process instead of
  using ``vfork()``, which runs every ``pthread_atfork`` handler in the child: in Dagster's
  multi-threaded gRPC code server, gRPC's handlers crashed that child (``pg_ctl ... died with
  SIGSEGV``). So no process of ours runs pgserver's start or stop itself: a fresh
  single-threaded interpreter does (:mod:`finops_pipeline.db.pgserver_control`), spawned
  without any option that would force a ``fork()``.
* pgserver's own reference count (``<datadir>/.handle_pids.json``, one pid per process,
  removed in an ``atexit`` hook) never forgets a process that died without running it
  (SIGKILL, a crash), so the server then never stopped. This module keeps its own list of the
  server's users (``<datadir>/.finops_users.json``) with each process's start time, drops the
  dead ones, and the last live user to exit stops the server. A last user that is killed never
  gets to stop it, so the process that starts the server also starts a watchdog
  (:mod:`finops_pipeline.db.server_watchdog`) that stops it once no user is alive.
* Run as root (``os.geteuid() == 0``), on every start pgserver:

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
import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import psutil

from finops_pipeline.config import finops_home, running_as_root
from finops_pipeline.errors import EmbeddedPostgresError, EmbeddedServerInUseError

logger = logging.getLogger(__name__)

#: Data folder name inside ``FINOPS_HOME``.
PGDATA_DIRNAME = "pgdata"

_LOCK_FILENAME = ".pgserver.lock"
_USERS_FILENAME = ".finops_users.json"
_CONTROL_MODULE = "finops_pipeline.db.pgserver_control"
_WATCHDOG_MODULE = "finops_pipeline.db.server_watchdog"

# pgserver's pg_ctl start times out after 10 s; a second process waiting on our lock may also
# wait through an initdb, so allow a generous margin before giving up.
_LOCK_TIMEOUT_SECONDS = 120.0

# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH_BYTES = 107
_SOCKET_NAME = ".s.PGSQL.5432"

# The bits pgserver's ensure_prefix_permissions() adds to every parent folder.
_PGSERVER_PREFIX_BITS = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


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
    bin_path = pgserver_bin_folder()
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
        install = pgserver_bin_folder()
        # The remedy depends on whose parent it is: FINOPS_HOME moves the data folder, but the
        # server's binaries stay in the virtualenv, which only moving the install fixes.
        in_install = set(_parents(install))
        if any(folder in in_install for folder, _mode in problems):
            remedy = (
                f"PostgreSQL's binaries are in this project's virtualenv ({install}), and the "
                "server's OS user must reach them: clone and install the project under a folder "
                "whose parents are world-traversable (e.g. /opt, /srv or /var/tmp, not /root or "
                "a private temporary folder)"
            )
        else:
            remedy = (
                "Set FINOPS_HOME=/var/lib/finops (or another folder whose parents are already "
                "world-traversable)"
            )
        raise EmbeddedPostgresError(
            "Refusing to start the embedded PostgreSQL server as root: pgserver would chmod "
            f"g+rx,o+rx every parent folder of its data folder {pgdata} and of its own install, "
            f"which would open up {listed} to every user. {remedy}, run as a normal user, or set "
            "DATABASE_URL to use an external PostgreSQL server."
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
def startup_lock(home: Path) -> Iterator[None]:
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
    Importing it starts nothing; this process only reads its install path.

    Returns:
        The ``pgserver`` module.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
        import pgserver._commands

    return pgserver


def pgserver_bin_folder() -> Path:
    """The folder of the PostgreSQL programs shipped in the pgserver wheel."""
    return Path(_import_pgserver()._commands.POSTGRES_BIN_PATH)


# --- the running server, read from postmaster.pid ------------------------------------------


@dataclass(frozen=True)
class Postmaster:
    """The server a data folder's ``postmaster.pid`` names, while it runs."""

    pid: int
    socket_dir: Path


def running_postmaster(pgdata: Path) -> Postmaster | None:
    """Return the server running on ``pgdata`` and ready for connections, else None.

    ``postmaster.pid`` lines: pid, data folder, start time, port, socket folder, listen
    address, shared memory key, status (``ready`` once it accepts connections). A file left by
    a killed server names a dead pid and is ignored, as PostgreSQL itself does on start.
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit() or not lines[4].strip():
        return None
    pid = int(lines[0])
    if lines[7].strip() != "ready" or not _pid_is_postgres(pid):
        return None
    return Postmaster(pid=pid, socket_dir=Path(lines[4].strip()))


def _pid_is_postgres(pid: int) -> bool:
    try:
        return psutil.Process(pid).name() == "postgres"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def socket_url(socket_dir: Path) -> str:
    """The libpq URL of a server listening in ``socket_dir``.

    pgserver's own ``get_uri`` does not percent-encode the socket folder; we do, so a data
    folder with a space, ``&`` or ``%`` in its path still yields a valid URL.
    """
    return f"postgresql://postgres:@/postgres?host={quote(str(socket_dir), safe='/')}"


# --- which processes use the server ----------------------------------------------------------


@dataclass(frozen=True)
class ServerUser:
    """A process that uses the embedded server: its pid and its start time.

    The start time tells a live user from an unrelated process that got a dead user's pid;
    containers reuse small pids on every restart.
    """

    pid: int
    started: float

    @classmethod
    def this_process(cls) -> ServerUser:
        return cls(os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:  # cannot tell: keep it, stopping under a user is worse
            return True

    def describe(self) -> str:
        try:
            command = " ".join(psutil.Process(self.pid).cmdline()[:4])
        except psutil.Error:
            command = "?"
        return f"{self.pid} ({command})"


def _users_path(pgdata: Path) -> Path:
    return pgdata / _USERS_FILENAME


def read_server_users(pgdata: Path) -> list[ServerUser]:
    """The processes recorded as using the server, dead or alive. Call under the lock."""
    try:
        entries = json.loads(_users_path(pgdata).read_text())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except ValueError:
        logger.warning("Ignoring the unreadable %s", _users_path(pgdata))
        return []
    return [
        ServerUser(int(entry["pid"]), float(entry["started"]))
        for entry in entries
        if isinstance(entry, dict) and "pid" in entry and "started" in entry
    ]


def write_server_users(pgdata: Path, users: list[ServerUser]) -> None:
    path = _users_path(pgdata)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps([{"pid": u.pid, "started": u.started} for u in users]))
    temporary.replace(path)


def live_server_users(pgdata: Path) -> tuple[list[ServerUser], int]:
    """Live users, and how many dead ones (killed, crashed) were dropped from the list."""
    users = read_server_users(pgdata)
    live = [user for user in users if user.alive()]
    return live, len(users) - len(live)


# --- starting and stopping, always in a helper process --------------------------------------


def _package_root() -> str:
    import finops_pipeline

    return str(Path(finops_pipeline.__file__).resolve().parents[1])


def _control_command(action: str, pgdata: Path) -> list[str]:
    return [sys.executable, "-m", _CONTROL_MODULE, action, str(pgdata)]


def _helper_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
    return env


#: Seconds between the watchdog's looks at the users list, or ``off`` for no watchdog.
ENV_WATCHDOG_SECONDS = "FINOPS_EMBEDDED_WATCHDOG_SECONDS"
DEFAULT_WATCHDOG_SECONDS = 2.0


def watchdog_interval_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """``FINOPS_EMBEDDED_WATCHDOG_SECONDS`` (default 2 s, at least 0.1 s); None when ``off``."""
    raw = (os.environ if environ is None else environ).get(ENV_WATCHDOG_SECONDS, "").strip()
    if raw.lower() == "off":
        return None
    try:
        return max(0.1, float(raw)) if raw else DEFAULT_WATCHDOG_SECONDS
    except ValueError:
        raise EmbeddedPostgresError(
            f"{ENV_WATCHDOG_SECONDS}={raw!r} is not a number of seconds; set e.g. 2, or off."
        ) from None


def _start_watchdog(home: Path, pgdata: Path, interval: float | None) -> None:
    """Start :mod:`server_watchdog` for a server this process has just started.

    In its own session, so a Ctrl-C or a kill aimed at the Dagster processes' group leaves it
    alone; spawned like the control helper (no option forcing a ``fork()``). It exits by itself
    once the server is stopped.
    """
    if interval is None:
        return
    subprocess.Popen(
        [sys.executable, "-m", _WATCHDOG_MODULE, str(home), str(pgdata), str(interval)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_helper_environment(),
        start_new_session=True,
    )


def run_control(action: str, pgdata: Path) -> None:
    """Run ``pgserver_control`` in a new interpreter; see that module for why.

    No ``user=``, ``preexec_fn`` or other option is passed that would force CPython to
    ``fork()`` this (possibly multi-threaded) process: it is spawned with ``vfork()``. Output
    goes to temporary files, not pipes: ``pg_ctl start`` leaves the server running, and a
    server holding a pipe's write end would keep ``communicate()`` waiting forever.

    Raises:
        EmbeddedPostgresError: the helper failed; the message carries its one-line reason.
    """
    env = _helper_environment()
    with tempfile.TemporaryFile("w+") as output:
        try:
            completed = subprocess.run(
                _control_command(action, pgdata),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=_LOCK_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EmbeddedPostgresError(
                f"Timed out after {_LOCK_TIMEOUT_SECONDS:.0f} s trying to {action} the embedded "
                f"PostgreSQL server in {pgdata}. Its log is {pgdata / 'log'}."
            ) from None
        output.seek(0)
        lines = [line for line in output.read().splitlines() if line.strip()]
    if completed.returncode != 0:
        reason = lines[-1] if lines else f"exit code {completed.returncode}"
        verb = "start" if action == "start" else "stop"
        raise EmbeddedPostgresError(
            f"Could not {verb} the embedded PostgreSQL server in {pgdata} ({reason}). Its log is "
            f"{pgdata / 'log'}. Fix the cause, or set DATABASE_URL to use an external "
            "PostgreSQL server."
        )


@dataclass(frozen=True)
class _Attachment:
    pid: int
    user: ServerUser
    home: Path


# The data folders this process uses, with the pid that registered them. A child made by
# fork() inherits the dict but is not in the users list, so it must register itself.
_attached: dict[Path, _Attachment] = {}
_attached_lock = threading.Lock()
_atexit_registered = False


def embedded_database_url(home: Path | None = None) -> str:
    """Start, or attach to, the embedded PostgreSQL server and return its URL.

    The data folder is ``home / "pgdata"``. Under an exclusive lock on
    ``home / ".pgserver.lock"`` (so processes and threads starting at once cannot race), a
    server that is not running is started by a helper process (:mod:`pgserver_control`), and
    this process is added to the list of the server's users. That list is a reference count:
    the last user to exit stops the server, so the Dagster webserver, daemon, code server, run
    workers and the CLI can come and go independently. Users that died without exiting
    cleanly (SIGKILL, a crash) are recognised and dropped, so they never keep the server up;
    the process that starts the server also starts its watchdog, which stops it when the
    last user died that way.
    Later calls check that the server still runs and return at once.

    Args:
        home: FINOPS_HOME folder; defaults to :func:`finops_home`. Created (mode 0755, only the
            missing folders) if needed.

    Returns:
        A libpq URL, ``postgresql://postgres:@/postgres?host=<socket folder>``.

    Raises:
        EmbeddedPostgresError: Running as root and pgserver would widen the permissions of an
            existing folder, or the server could not be started.
    """
    global _atexit_registered

    home = (finops_home() if home is None else home).expanduser().absolute()
    pgdata = (home / PGDATA_DIRNAME).resolve()

    with _attached_lock:
        attachment = _attached.get(pgdata)
        if attachment is not None and attachment.pid == os.getpid():
            postmaster = running_postmaster(pgdata)
            if postmaster is not None:
                return socket_url(postmaster.socket_dir)

        # Check before creating anything, so a refusal leaves the file system untouched.
        if running_as_root():
            _check_root_safety(pgdata)
        watchdog_interval = watchdog_interval_seconds()

        _make_dirs(home)
        with startup_lock(home):
            postmaster = running_postmaster(pgdata)
            if postmaster is None:
                run_control("start", pgdata)
                postmaster = running_postmaster(pgdata)
                if postmaster is None:
                    raise EmbeddedPostgresError(
                        f"The embedded PostgreSQL server in {pgdata} stopped right after it "
                        f"started. Its log is {pgdata / 'log'}."
                    )
                logger.info("Started the embedded PostgreSQL server, data folder %s", pgdata)
                _start_watchdog(home, pgdata, watchdog_interval)
            me = ServerUser.this_process()
            live, dropped = live_server_users(pgdata)
            if dropped:
                logger.info("Dropped %d dead process(es) from the server's users", dropped)
            write_server_users(pgdata, [*(u for u in live if u.pid != me.pid), me])

        _attached[pgdata] = _Attachment(os.getpid(), me, home)
        if not _atexit_registered:
            atexit.register(_release_all)
            _atexit_registered = True
        return socket_url(postmaster.socket_dir)


def _release(pgdata: Path, attachment: _Attachment) -> None:
    """Take this process off the server's users; stop the server if it was the last one."""
    if not pgdata.is_dir():  # deleted under us: nothing left to count or stop
        return
    with startup_lock(attachment.home):
        live, _dropped = live_server_users(pgdata)
        remaining = [user for user in live if user.pid != attachment.user.pid]
        write_server_users(pgdata, remaining)
        if not remaining and running_postmaster(pgdata) is not None:
            run_control("stop", pgdata)
            logger.info("Stopped the embedded PostgreSQL server, data folder %s", pgdata)


def _release_all() -> None:
    """At exit: release every data folder this process (not a forked parent) attached to."""
    with _attached_lock:
        mine = [(pgdata, a) for pgdata, a in _attached.items() if a.pid == os.getpid()]
        for pgdata, _attachment in mine:
            del _attached[pgdata]
    for pgdata, attachment in mine:
        try:
            _release(pgdata, attachment)
        except Exception as error:  # at exit there is no one left to raise to
            logger.warning("Could not release the embedded server in %s: %s", pgdata, error)


def stop_embedded_server(home: Path | None = None) -> None:
    """Release this process's use of the embedded server.

    The server stops only if no other live process still uses it. Mostly for tests, which
    must stop a server before deleting its data folder.

    Args:
        home: FINOPS_HOME folder; defaults to :func:`finops_home`.
    """
    home = (finops_home() if home is None else home).expanduser().absolute()
    pgdata = (home / PGDATA_DIRNAME).resolve()
    with _attached_lock:
        attachment = _attached.get(pgdata)
        if attachment is None or attachment.pid != os.getpid():
            return
        del _attached[pgdata]
    _release(pgdata, attachment)


@dataclass(frozen=True)
class StopReport:
    """What :func:`stop_server` found and did."""

    pgdata: Path
    was_running: bool
    server_pid: int | None
    dead_users_dropped: int
    live_users_stopped: list[str] = field(default_factory=list)


def stop_server(home: Path | None = None, *, force: bool = False) -> StopReport:
    """Stop the embedded server now (``finops db stop``), unless live processes use it.

    Dead users (killed or crashed processes) are dropped from the list first, so they never
    block a stop.

    Args:
        home: FINOPS_HOME folder; defaults to :func:`finops_home`.
        force: Stop it even while other live processes use it (their next query fails).

    Raises:
        EmbeddedServerInUseError: Live processes still use the server and ``force`` is False.
        EmbeddedPostgresError: ``pg_ctl stop`` failed.
    """
    home = (finops_home() if home is None else home).expanduser().absolute()
    pgdata = (home / PGDATA_DIRNAME).resolve()
    if not pgdata.exists():
        return StopReport(pgdata, was_running=False, server_pid=None, dead_users_dropped=0)
    with startup_lock(home):
        live, dropped = live_server_users(pgdata)
        others = [user for user in live if user.pid != os.getpid()]
        postmaster = running_postmaster(pgdata)
        if postmaster is None:
            write_server_users(pgdata, [])
            return StopReport(pgdata, False, None, dropped)
        if others and not force:
            raise EmbeddedServerInUseError(
                f"The embedded PostgreSQL server in {pgdata} is in use by "
                f"{', '.join(user.describe() for user in others)}. Stop those first (Ctrl-C in "
                "`finops ui`), or run `finops db stop --force` to stop it under them."
            )
        described = [user.describe() for user in others]
        run_control("stop", pgdata)
        write_server_users(pgdata, [])
    with _attached_lock:
        _attached.pop(pgdata, None)
    return StopReport(pgdata, True, postmaster.pid, dropped, described)


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
