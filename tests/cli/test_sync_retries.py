"""`finops sync` retries transient failures in new runs, says so as it goes, and reports every
attempt; its default output is its own lines only."""

from __future__ import annotations

import dagster as dg
import pytest

from finops_pipeline.cli.runner import RetryNotice, sync_accounts
from finops_pipeline.providers.aws.sandbox import request_counts, reset_request_counts
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
    finops,
    last_sync,
    paid_requests_by_account_number,
    recent_window,
)

pytestmark = pytest.mark.integration

# The sandbox throttles exactly this share of requests, evenly from the first: two throttled,
# one answered, two throttled, ... With one botocore retry (two attempts per request), the
# first account's request fails, the second account's is answered, the first account's
# retry fails again and its second retry is answered.
THROTTLE_TWO_IN_THREE = "0.667"


def test_a_retry_loads_the_throttled_account_and_the_summary_covers_every_attempt(
    database_url: str, encryption_key: str, key_ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (add_sandbox_account(database_url, key_ring, n) for n in SANDBOX_NUMBERS)
    monkeypatch.setenv("FINOPS_SANDBOX_THROTTLE_RATE", THROTTLE_TWO_IN_THREE)
    reset_request_counts()
    start, end = recent_window(5)
    notices: list[RetryNotice] = []
    waits: list[float] = []
    with dg.instance_for_test() as instance:
        result = sync_accounts(
            [first, second],
            start,
            end,
            instance=instance,
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
                "gcp_billing_export": GcpBillingExportResource(),
                "aws_cost_explorer": AwsCostExplorerResource(max_attempts=1),
                "azure_cost_management": AzureCostManagementResource(),
            },
            retry=SyncRetrySettings(max_retries=3, first_wait_seconds=7),
            on_retry=notices.append,
            sleep=waits.append,
        )
    assert result.success, result.error
    assert result.attempts == 3
    assert len(result.run_ids) == 3
    assert [(n.retry, n.wait_seconds) for n in notices] == [(1, 7), (2, 14)]
    assert waits == [7, 14]
    # Whichever account the run asked for first was throttled; the other was answered.
    throttled = notices[0].failures[0].account_id
    (answered,) = {first, second} - {throttled}
    assert all([f.account_id for f in n.failures] == [throttled] for n in notices)
    assert all("ProviderThrottledError" in (n.failures[0].error or "") for n in notices)
    accounts = result.account_results
    assert (accounts[throttled].status, accounts[throttled].attempt) == ("loaded", 3)
    assert (accounts[answered].status, accounts[answered].attempt) == ("loaded", 1)
    # Every figure adds up the attempts: both accounts' rows and both paid requests.
    assert accounts[throttled].rows_in_window > 0 and accounts[answered].rows_in_window > 0
    rows = accounts[throttled].rows_in_window + accounts[answered].rows_in_window
    assert result.statistics["row_count"] == rows
    assert result.statistics["paid_ce_requests"] == request_counts().paid == 2
    assert last_sync(database_url, throttled)[0::2] == ("success", result.run_ids[2])
    assert last_sync(database_url, answered)[0::2] == ("success", result.run_ids[0])


def test_cli_prints_one_line_per_retry_and_per_failed_account_and_no_dagster_output(
    database_url: str, encryption_key: str, key_ring: KeyRing, tmp_path
) -> None:
    first, second = (add_sandbox_account(database_url, key_ring, n) for n in SANDBOX_NUMBERS)
    start, end = recent_window(5)
    env = cli_env(
        database_url,
        encryption_key,
        tmp_path,
        FINOPS_SANDBOX_THROTTLE_RATE=THROTTLE_TWO_IN_THREE,
        FINOPS_CE_MAX_ATTEMPTS="1",
    )
    # A Dagster home used before: Dagster's first-use telemetry notice is not sync's output.
    (tmp_path / "dagster" / ".telemetry").mkdir(parents=True)
    (tmp_path / "dagster" / ".telemetry" / "id.yaml").write_text("instance_id: finops-test\n")
    args = ["sync", "--account", first, "--account", second]
    args += ["--start", start.isoformat(), "--end", end.isoformat()]
    result = finops(*args, "--retries", "1", "--retry-wait", "0", env=env)

    assert result.returncode == 1, result.stderr
    stderr = result.stderr.splitlines()
    retries = [line for line in stderr if line.startswith("retry ")]
    assert len(retries) == 1, result.stderr
    assert retries[0].startswith("retry 1 of 1 in 0 s for 1 account that failed transiently: ")
    assert "ProviderThrottledError" in retries[0]
    throttled = first if first in retries[0] else second
    (answered,) = {first, second} - {throttled}
    assert throttled in retries[0] and answered not in retries[0]
    errors = [line for line in stderr if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: account {throttled}: "), stderr
    assert "ProviderThrottledError" in errors[0]
    # Our own lines only: no Dagster event log, warnings or stack traces without -v.
    assert len(stderr) == 2, result.stderr
    output = result.stdout + result.stderr
    for noise in ("Traceback", "Warning", "dagster - ", "DEBUG", "Stack Trace", "of 1 accounts"):
        assert noise not in output
    summary = result.stdout
    assert "sync FAILED" in summary
    assert "attempts           2" in summary
    assert "accounts           1 loaded (1 in earlier attempts), 1 failed, of 2" in summary
    # The account loaded in the first attempt is counted: its rows and its paid request.
    numbers = dict(zip((first, second), SANDBOX_NUMBERS, strict=True))
    assert paid_requests_by_account_number(tmp_path) == {numbers[answered]: 1}
    assert "paid_ce_requests   1" in summary
    assert last_sync(database_url, answered)[0] == "success"
    status, error, _ = last_sync(database_url, throttled)
    assert status == "failed" and "ProviderThrottledError" in str(error)


def test_retries_default_to_finops_retry_max() -> None:
    assert SyncRetrySettings.from_env({}).max_retries == 2
    assert SyncRetrySettings.from_env({"FINOPS_RETRY_MAX": "0"}).max_retries == 0
    assert [SyncRetrySettings(first_wait_seconds=10).wait_before(n) for n in (1, 2, 3)] == [
        10,
        20,
        40,
    ]
