"""Tests for the embedded PostgreSQL server (pgserver) wrapper.

These start real servers, independently of FINOPS_TEST_DATABASE_URL. Run as root, pgserver
chmods every parent of its data folder, so the servers live under a fresh folder in /var/tmp
(0755 chain: /, /var, /var/tmp is 1777) instead of pytest's tmp_path, whose
/tmp/pytest-of-root parent is 0700. The path is also kept short: the socket path
``<datadir>/.s.PGSQL.5432`` must fit in 107 bytes.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from finops_pipeline.db import embedded
from finops_pipeline.db.embedded import (
    ServerUser,
    embedded_database_url,
    read_server_users,
    resolve_database_url,
    running_postmaster,
    stop_embedded_server,
)
from finops_pipeline.db.urls import to_psycopg_url, with_database
from finops_pipeline.errors import EmbeddedPostgresError

REPO_ROOT = Path(__file__).resolve().parents[2]

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A world-traversable scratch folder that pgserver may use even when run as root."""
    folder = Path(tempfile.mkdtemp(prefix="finops-", dir="/var/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def home(scratch: Path) -> Iterator[Path]:
    """A FINOPS_HOME whose server is stopped (this process's handle released) afterwards."""
    path = scratch / "home"
    try:
        yield path
    finally:
        stop_embedded_server(path)


def _child_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env["FINOPS_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


_CHILD_SCRIPT = textwrap.dedent(
    """
    import sys
    import psycopg
    from finops_pipeline.db.embedded import resolve_database_url

    url, is_embedded = resolve_database_url()
    assert is_embedded
    with psycopg.connect(url) as conn:
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        rows = conn.execute(sys.argv[1]).fetchall() if len(sys.argv) > 1 else []
    print(url)
    print(started.isoformat())
    print(rows)
    """
)


def _run_child(home: Path, sql: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-c", _CHILD_SCRIPT, *([sql] if sql else [])]
    return subprocess.run(
        args, env=_child_env(home), capture_output=True, text=True, timeout=120, check=False
    )


# --- resolve_database_url (no server) ---------------------------------------


def test_database_url_wins_and_starts_nothing(tmp_path: Path) -> None:
    url = "postgresql://app:pw@db/finops"
    home = tmp_path / "never"
    env = {"DATABASE_URL": f" {url} ", "FINOPS_HOME": str(home)}
    assert resolve_database_url(env) == (url, False)
    assert not home.exists()


def test_folders_pgserver_would_open_are_detected(scratch: Path) -> None:
    for name, mode in (("private", 0o700), ("listable", 0o711), ("open", 0o755)):
        (scratch / name).mkdir()
        (scratch / name).chmod(mode)
    found = dict(embedded._folders_pgserver_would_open(scratch / "private" / "pgdata"))
    assert found == {scratch / "private": 0o700}
    found = dict(embedded._folders_pgserver_would_open(scratch / "listable" / "pgdata"))
    assert found == {scratch / "listable": 0o711}
    assert embedded._folders_pgserver_would_open(scratch / "open" / "pgdata") == []


def test_too_long_data_folder_is_refused_for_root(scratch: Path) -> None:
    pgdata = scratch / ("x" * 100) / "pgdata"
    with pytest.raises(EmbeddedPostgresError, match="too long for a Unix socket"):
        embedded._check_root_safety(pgdata)


def test_a_failed_start_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, scratch: Path) -> None:
    def failing_helper(action: str, pgdata: Path) -> list[str]:
        script = "import sys; print('initdb: noise'); sys.exit('RuntimeError: initdb exploded')"
        return [sys.executable, "-c", script]

    monkeypatch.setattr(embedded, "_control_command", failing_helper)
    home = scratch / "home"
    with pytest.raises(EmbeddedPostgresError) as caught:
        embedded_database_url(home)
    message = str(caught.value)
    assert message.startswith(
        f"Could not start the embedded PostgreSQL server in {home / 'pgdata'}"
    )
    assert "(RuntimeError: initdb exploded)" in message
    assert "DATABASE_URL" in message
    assert "\n" not in message


def test_a_failed_start_is_retried_by_the_next_call(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """pgserver caches its server object before starting it, so in one process a failed start
    used to fail every later call (every sensor tick) until a restart. Nothing of a failed
    start may stay behind in this process."""
    real_command = embedded._control_command
    monkeypatch.setattr(
        embedded,
        "_control_command",
        lambda action, pgdata: [sys.executable, "-c", "import sys; sys.exit('pg_ctl crashed')"],
    )
    with pytest.raises(EmbeddedPostgresError, match=r"\(pg_ctl crashed\)"):
        embedded_database_url(home)
    monkeypatch.setattr(embedded, "_control_command", real_command)
    url = embedded_database_url(home)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# --- real servers --------------------------------------------------------------------------


def test_embedded_server_starts_and_answers(home: Path) -> None:
    url = embedded_database_url(home)
    pgdata = (home / "pgdata").resolve()
    assert url == f"postgresql://postgres:@/postgres?host={pgdata}"
    # Only the folder we created, with the mode we chose.
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # Cached: the second call returns at once, with the same URL.
    assert embedded_database_url(home) == url


def test_url_forms_work_against_the_embedded_server(home: Path) -> None:
    import sqlalchemy as sa

    url = embedded_database_url(home)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE per_test")
    with psycopg.connect(with_database(url, "per_test")) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("per_test",)
    engine = sa.create_engine(to_psycopg_url(with_database(url, "per_test")))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "per_test"
    finally:
        engine.dispose()


def test_second_process_attaches_to_the_same_server(home: Path) -> None:
    url = embedded_database_url(home)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE shared_marker (value text)")
        conn.execute("INSERT INTO shared_marker VALUES ('from-parent')")
        conn.commit()
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]

    child = _run_child(home, "SELECT value FROM shared_marker")
    assert child.returncode == 0, child.stderr
    child_url, child_started, child_rows = child.stdout.strip().splitlines()[-3:]
    assert child_url == url
    assert child_started == started.isoformat()
    assert child_rows == "[('from-parent',)]"

    # The child's exit released only its own reference: the server is still up for us.
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM shared_marker").fetchone() == (1,)


def test_concurrent_first_start_is_safe(scratch: Path) -> None:
    home = scratch / "home"
    # Three processes race to initdb and start one fresh folder; each holds its connection for
    # a second, so they overlap and must all end up on the one server.
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD_SCRIPT, "SELECT pg_sleep(1)"],
            env=_child_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [child.communicate(timeout=120) for child in children]
    for child, (_out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
    urls = {out.strip().splitlines()[-3] for out, _err in results}
    assert urls == {f"postgresql://postgres:@/postgres?host={(home / 'pgdata').resolve()}"}


@pytest.mark.skipif(not IS_ROOT, reason="pgserver only changes folder permissions as root")
def test_root_refuses_to_open_up_a_private_parent(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir()
    private.chmod(0o700)
    home = private / "home"

    with pytest.raises(EmbeddedPostgresError) as caught:
        embedded_database_url(home)

    message = str(caught.value)
    assert str(private) in message
    assert "FINOPS_HOME=/var/lib/finops" in message
    assert "DATABASE_URL" in message
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert not home.exists()


def test_root_refuses_an_install_under_a_private_folder_and_says_to_move_the_install(
    monkeypatch: pytest.MonkeyPatch, scratch: Path
) -> None:
    """A clone in /root or a `mktemp -d` folder: the data folder is fine, but pgserver's
    binaries sit in the virtualenv below a 0700 folder, and FINOPS_HOME cannot help."""
    private = scratch / "clone"
    (private / ".venv" / "pginstall" / "bin").mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.setattr(
        embedded, "pgserver_bin_folder", lambda: private / ".venv" / "pginstall" / "bin"
    )
    monkeypatch.setattr(embedded, "running_as_root", lambda: True)
    home = scratch / "home"

    with pytest.raises(EmbeddedPostgresError) as caught:
        embedded_database_url(home)

    message = str(caught.value)
    assert f"{private} (mode 700)" in message
    assert "clone and install the project under a folder whose parents are" in message
    assert "FINOPS_HOME=" not in message
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert not home.exists()


# --- starting from a threaded process (the Dagster code server) ---------------------------


def test_racing_threads_start_one_server_and_never_fork_pg_ctl_themselves(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """The code server's sensors tick at once, in threads of a gRPC process. Run as root,
    pgserver's own start forks that process to switch user (subprocess.run(user=...)), and
    gRPC's fork handlers crashed the child. This process must start PostgreSQL only through a
    helper interpreter, spawned without any option that forces a fork()."""
    spawned: list[tuple[list[str], dict[str, object]]] = []
    real_init = subprocess.Popen.__init__

    def recording_init(self: subprocess.Popen, args: object, *rest: object, **kwargs: object):
        spawned.append(([str(a) for a in args] if isinstance(args, list) else [str(args)], kwargs))
        return real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    urls: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            urls.append(embedded_database_url(home))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    assert errors == []
    assert urls == [f"postgresql://postgres:@/postgres?host={(home / 'pgdata').resolve()}"] * 3
    programs = [Path(argv[0]).name for argv, _ in spawned]
    assert not {"pg_ctl", "initdb", "postgres", "useradd"} & set(programs), spawned
    starts = [argv for argv, _ in spawned if argv[1:3] == ["-m", embedded._CONTROL_MODULE]]
    assert [argv[3] for argv in starts] == ["start"]  # one start, however many threads
    watchdogs = [argv for argv, _ in spawned if argv[1:3] == ["-m", embedded._WATCHDOG_MODULE]]
    assert len(watchdogs) == 1  # started by the one that started the server
    for _argv, kwargs in spawned:
        # Any of these makes CPython fork() instead of vfork().
        for forcing in ("user", "group", "extra_groups", "preexec_fn"):
            assert kwargs.get(forcing) is None, (forcing, kwargs)
    with psycopg.connect(urls[0]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# --- processes that die without exiting cleanly ---------------------------------------------


_KILLED_CHILD = textwrap.dedent(
    """
    import os, signal
    from finops_pipeline.db.embedded import embedded_database_url
    print(embedded_database_url(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit hook runs, as after kill -9 or a crash
    """
)


def _killed_user(home: Path, *, watchdog: str = "off") -> None:
    """A process that starts the server and dies by SIGKILL; with ``watchdog="off"`` (the
    default here) nothing stops the server after it, as before the watchdog existed."""
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD],
        env={**_child_env(home), embedded.ENV_WATCHDOG_SECONDS: watchdog},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -9, child.stderr


def test_a_killed_user_does_not_keep_the_server_running(home: Path) -> None:
    _killed_user(home)
    pgdata = (home / "pgdata").resolve()
    killed = read_server_users(pgdata)
    assert len(killed) == 1 and not killed[0].alive()
    assert running_postmaster(pgdata) is not None  # left running by the killed process

    embedded_database_url(home)
    assert [user.pid for user in read_server_users(pgdata)] == [os.getpid()]
    stop_embedded_server(home)  # the last live user leaves: the server stops

    assert running_postmaster(pgdata) is None
    assert read_server_users(pgdata) == []


def _watchdogs(pgdata: Path) -> list[psutil.Process]:
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if embedded._WATCHDOG_MODULE in (process.info["cmdline"] or [])
        and str(pgdata) in (process.info["cmdline"] or [])
    ]


def _exited(process: psutil.Process) -> bool:
    """Gone, or a zombie: this test process is its parent and has not reaped it yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_the_watchdog_stops_a_server_whose_last_user_was_killed(home: Path) -> None:
    """SIGKILL, the OOM killer, or a person killing a slow `dagster dev`: the last user never
    runs its exit hook, so the watchdog started with the server stops it."""
    _killed_user(home, watchdog="0.2")
    pgdata = (home / "pgdata").resolve()

    assert _wait_for(lambda: running_postmaster(pgdata) is None)
    assert read_server_users(pgdata) == []
    assert _wait_for(lambda: not _watchdogs(pgdata))  # and it exits with the server


def test_the_watchdog_leaves_a_server_with_a_live_user_running(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv(embedded.ENV_WATCHDOG_SECONDS, "0.2")
    url = embedded_database_url(home)  # this test process is the live user
    pgdata = (home / "pgdata").resolve()
    [watchdog] = _watchdogs(pgdata)
    # Its own session: Ctrl-C or a kill aimed at the starter's process group misses it.
    assert os.getsid(watchdog.pid) == watchdog.pid != os.getsid(0)

    time.sleep(1.5)  # several looks at the users list
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not _exited(watchdog)

    stop_embedded_server(home)  # the last user leaves and stops the server itself
    assert running_postmaster(pgdata) is None
    assert _wait_for(lambda: _exited(watchdog))


def test_a_bad_watchdog_setting_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv(embedded.ENV_WATCHDOG_SECONDS, "soon")
    with pytest.raises(EmbeddedPostgresError, match="FINOPS_EMBEDDED_WATCHDOG_SECONDS='soon'"):
        embedded_database_url(home)
    assert not (home / "pgdata").exists()
    assert embedded.watchdog_interval_seconds({embedded.ENV_WATCHDOG_SECONDS: "OFF"}) is None
    assert embedded.watchdog_interval_seconds({}) == embedded.DEFAULT_WATCHDOG_SECONDS


def test_a_reused_pid_is_not_taken_for_the_dead_user() -> None:
    me = ServerUser.this_process()
    assert me.alive()
    assert not ServerUser(me.pid, me.started - 3600).alive()  # same pid, another process
    assert not ServerUser(2**22 + 7, me.started).alive()  # no such pid


# --- finops db stop ---------------------------------------------------------------------------


def _db_stop(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "finops"), "db", "stop", *args],
        env=_child_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_stop_stops_a_server_left_by_a_killed_process(home: Path) -> None:
    _killed_user(home)
    pgdata = (home / "pgdata").resolve()
    server_pid = running_postmaster(pgdata).pid

    stopped = _db_stop(home)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (
        f"Stopped the embedded PostgreSQL server in {pgdata} (pid {server_pid}); dropped 1 "
        "dead process(es) from its users.\n"
    )
    assert running_postmaster(pgdata) is None

    again = _db_stop(home)
    assert again.returncode == 0
    assert again.stdout == f"The embedded PostgreSQL server in {pgdata} is not running.\n"


def test_db_stop_refuses_while_a_live_process_uses_the_server_unless_forced(home: Path) -> None:
    url = embedded_database_url(home)  # this test process is the live user
    pgdata = (home / "pgdata").resolve()

    refused = _db_stop(home)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"error: The embedded PostgreSQL server in {pgdata} is in use by {os.getpid()} ("
    )
    assert "finops db stop --force" in refused.stderr
    assert refused.stderr.count("\n") == 1
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    forced = _db_stop(home, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"(still used by {os.getpid()} (" in forced.stdout
    assert running_postmaster(pgdata) is None


def test_db_stop_refuses_when_database_url_is_set(home: Path) -> None:
    env = {**_child_env(home), "DATABASE_URL": "postgresql://finops:pw@db.internal/finops"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "finops"), "db", "stop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: DATABASE_URL is set, so the embedded server is not")
    assert "pw" not in result.stderr
    assert not home.exists()
