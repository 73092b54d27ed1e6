"""The connection to PostgreSQL dies mid-load (its backend is terminated while the loader holds
the window): the window is rolled back, the cause is named, and the attempt is recorded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from finops_pipeline.cli.runner import RetryNotice, sync_accounts
from finops_pipeline.db.sync_state import outcomes_for_run
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.retries import SyncRetrySettings
from tests.cli_sandbox import (
    SANDBOX_NUMBERS,
    add_sandbox_account,
    cli_env,
    cost_rows,
    finops,
    last_sync,
    paid_requests_by_account_number,
    recent_window,
)

pytestmark = pytest.mark.integration

# A backend that holds a window's advisory lock and waits for a lock on cost_data itself: a
# loader inside its transaction, about to change the window's rows.
_LOADER_WAITING_ON_COST_DATA = """
SELECT waiting.pid
FROM pg_locks waiting
JOIN pg_locks window_lock ON window_lock.pid = waiting.pid
WHERE waiting.locktype = 'relation' AND NOT waiting.granted
  AND waiting.relation = 'cost_data'::regclass
  AND waiting.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND window_lock.locktype = 'advisory' AND window_lock.granted
"""


class BackendTerminator(threading.Thread):
    """Blocks writes to cost_data, then terminates the first loader that waits on them."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.url = to_libpq_url(database_url)
        self.blocking = threading.Event()
        self.terminated: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                psycopg.connect(self.url, autocommit=True) as blocker,
                psycopg.connect(self.url, autocommit=True) as watcher,
                blocker.transaction(),
            ):
                # SHARE lets the loader read and stage, and stops it at its first write.
                blocker.execute("LOCK TABLE cost_data IN SHARE MODE")
                self.blocking.set()
                deadline = time.monotonic() + 240
                while not self.terminated and time.monotonic() < deadline:
                    row = watcher.execute(_LOADER_WAITING_ON_COST_DATA).fetchone()
                    if row:
                        watcher.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                        self.terminated.append(row[0])
                    time.sleep(0.05)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.blocking.set()


def resources(database_url: str, encryption_key: str) -> dict[str, object]:
    return {
        "postgres": PostgresResource(database_url=database_url),
        "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
        "gcp_billing_export": GcpBillingExportResource(),
        "aws_cost_explorer": AwsCostExplorerResource(),
        "azure_cost_management": AzureCostManagementResource(),
    }


def test_cli_names_the_lost_connection_records_the_attempt_and_keeps_the_rows(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts = [add_sandbox_account(database_url, key_ring, n) for n in SANDBOX_NUMBERS]
    numbers = dict(zip(accounts, SANDBOX_NUMBERS, strict=True))
    start, end = recent_window(4)
    # Load the windows once, from an earlier sandbox pull; the CLI reads a later one, whose
    # estimated days are restated, so its load would change rows.
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    with dg.instance_for_test() as instance:
        first = sync_accounts(
            accounts,
            start,
            end,
            instance=instance,
            resources=resources(database_url, encryption_key),
            retry=SyncRetrySettings(max_retries=0),
        )
    assert first.success, first.error
    before = cost_rows(database_url)
    assert before

    terminator = BackendTerminator(database_url)
    terminator.start()
    terminator.blocking.wait(30)
    env = cli_env(
        database_url,
        encryption_key,
        tmp_path,
        FINOPS_RETRY_MAX="0",
        FINOPS_SANDBOX_GENERATION="2",
    )
    args = ["sync", "--account", accounts[0], "--account", accounts[1]]
    result = finops(*args, "--start", start.isoformat(), "--end", end.isoformat(), env=env)
    terminator.join(60)
    assert terminator.error is None and len(terminator.terminated) == 1

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "max_retries" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    lost = next(line for line in errors if "was lost while loading" in line)
    assert "DatabaseConnectionLostError" in lost and "rolled back" in lost
    lost_account = next(a for a in accounts if f"account {a}:" in lost)
    (skipped,) = set(accounts) - {lost_account}
    # The other account was not fetched at all: its rows could not have been stored.
    assert paid_requests_by_account_number(tmp_path) == {numbers[lost_account]: 1}
    assert cost_rows(database_url) == before

    status, error, run_id = last_sync(database_url, lost_account)
    assert status == "failed"
    assert str(error).startswith("DatabaseConnectionLostError: The connection to PostgreSQL")
    assert f"{start}..{end}" in str(error)
    assert last_sync(database_url, skipped)[0:2] == (
        "failed",
        "DatabaseConnectionLostError: Not collected: the connection to PostgreSQL was lost "
        "earlier in this run, so nothing was requested from the provider. Re-run once the "
        "database is reachable.",
    )
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as connection:
        outcomes = {o.cloud_account_id: o for o in outcomes_for_run(connection, str(run_id))}
    assert {a: o.status for a, o in outcomes.items()} == dict.fromkeys(accounts, "failed")

    # Once the database is back, the same sync replaces the windows: the lost load would have
    # changed rows, so "unchanged" above means rolled back.
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "2")
    with dg.instance_for_test() as instance:
        again = sync_accounts(
            accounts,
            start,
            end,
            instance=instance,
            resources=resources(database_url, encryption_key),
            retry=SyncRetrySettings(max_retries=0),
        )
    assert again.success, again.error
    assert cost_rows(database_url) != before


def test_a_lost_connection_is_transient_so_the_retry_loads_the_window(
    database_url: str, encryption_key: str, key_ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = add_sandbox_account(database_url, key_ring, SANDBOX_NUMBERS[0])
    start, end = recent_window(4)
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    with dg.instance_for_test() as instance:
        first = sync_accounts(
            [account],
            start,
            end,
            instance=instance,
            resources=resources(database_url, encryption_key),
            retry=SyncRetrySettings(max_retries=0),
        )
        assert first.success, first.error
        before = cost_rows(database_url)

        terminator = BackendTerminator(database_url)
        terminator.start()
        terminator.blocking.wait(30)
        monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "2")
        notices: list[RetryNotice] = []
        result = sync_accounts(
            [account],
            start,
            end,
            instance=instance,
            resources=resources(database_url, encryption_key),
            retry=SyncRetrySettings(max_retries=1, first_wait_seconds=0),
            on_retry=notices.append,
        )
        terminator.join(60)
    assert terminator.error is None and len(terminator.terminated) == 1
    assert result.success, result.error
    assert result.attempts == 2
    (failure,) = notices[0].failures
    assert str(failure.error).startswith("DatabaseConnectionLostError: ")
    assert cost_rows(database_url) != before  # the retry replaced the window
    assert last_sync(database_url, account)[0::2] == ("success", result.run_ids[1])
