"""Cost Explorer has no data (yet) for a window that already holds rows, and how failures read.

``finops sync`` runs in-process against a moto server over HTTP; Cost Explorer's
``DataUnavailableException`` comes back as an HTTP 400 JSON error, as AWS sends it, and
botocore parses it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg
import pytest
import requests
from click.testing import CliRunner, Result
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from moto.ce.responses import CostExplorerResponse
from moto.core.exceptions import JsonRESTError
from moto.server import ThreadedMotoServer

from finops_pipeline.assets import cost_data
from finops_pipeline.cli.commands import main
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.resources import (
    AwsCostExplorerResource,
    AzureCostManagementResource,
    CredentialDecryptor,
    GcpBillingExportResource,
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.collection import AccountFailure, CollectionReport, WindowResult
from finops_pipeline.sync.ranges import DateRange, account_date_key
from tests.ce_responses import TWO_SERVICES, paginate, simple_days
from tests.dates import RECENT_START

pytestmark = pytest.mark.integration

START = RECENT_START
END = START + dt.timedelta(days=2)


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # Every moto server of a process shares one set of backends: start from a clean one.
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    yield url
    server.stop()


def add_account(
    connection: psycopg.Connection, ring: KeyRing, endpoint: str | None, number: str
) -> str:
    return register_account(
        connection,
        ring,
        tenant_id="acme",
        name=f"acme {number}",
        provider="aws",
        provider_account_id=number,
        credentials=AwsAccessKeyCredentials(
            access_key_id="AKIAEXAMPLEKEY000003", secret_access_key=Secret("no-data-secret")
        ),
        endpoint_url=endpoint,
    )


def sync(env: dict[str, str], account_id: str, *extra: str) -> Result:
    args = ["sync", "--account", account_id, "--start", str(START), "--end", str(END), *extra]
    return CliRunner().invoke(main, args, env=env)


def test_no_data_yet_keeps_the_rows_and_says_so(
    moto_endpoint: str,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account_id = add_account(connection, key_ring, moto_endpoint, "123456789012")
    for page in paginate(simple_days(START, 3, TWO_SERVICES), per_page=10):
        requests.post(
            f"{moto_endpoint}/moto-api/static/ce/cost-and-usage-results",
            json={"results": [page]},
            timeout=10,
        ).raise_for_status()
    env = {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "ENCRYPTION_KEYS_PREVIOUS": "",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "FINOPS_HOME": str(tmp_path / "home"),
        "FINOPS_CE_ENDPOINT_URL": "",
    }
    first = sync(env, account_id)
    assert first.exit_code == 0, first.output
    before = connection.execute("SELECT * FROM cost_data ORDER BY date, service").fetchall()
    assert len(before) == 6

    def no_data_yet(self: CostExplorerResponse) -> str:
        raise JsonRESTError(
            "DataUnavailableException", "Data is not available. Please try again later."
        )

    monkeypatch.setattr(CostExplorerResponse, "get_cost_and_usage", no_data_yet)
    text = sync(env, account_id)
    as_json = sync(env, account_id, "--output", "json")

    note = f"{account_id}: no data available yet for {START}..{END}; existing rows kept (6 rows)"
    assert text.exit_code == 0, text.output
    assert f"note: {note}" in text.stdout
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    statistics = report["statistics"]
    # The materialisation metadata (the CLI's statistics) says it and counts the real rows.
    assert statistics["no_data"] == [note]
    assert statistics["row_count"] == 6
    assert statistics["rows_written"] == 0 and statistics["paid_ce_requests"] == 0
    assert connection.execute("SELECT * FROM cost_data ORDER BY date, service").fetchall() == (
        before
    )
    outcome = connection.execute(
        "SELECT status, rows_written, rows_in_window FROM account_sync_runs WHERE run_id = %s",
        (report["run_id"],),
    ).fetchone()
    assert outcome == ("success", 0, 6)
    last_sync = connection.execute(
        "SELECT last_sync_status, last_sync_rows, last_sync_run_id FROM cloud_accounts "
        "WHERE id = %s",
        (account_id,),
    ).fetchone()
    assert last_sync == ("success", 6, report["run_id"])


# --- how a failed run describes itself -----------------------------------------------------


def window(account: str) -> WindowResult:
    return WindowResult(
        account_id=account,
        tenant_id="t",
        window=DateRange(START, END),
        paid_requests=1,
        estimated_days=0,
        final_days=3,
        load=None,
        rows=pd.DataFrame(),
    )


def failure(account: str) -> AccountFailure:
    return AccountFailure(account, "t", "ProviderAccessDeniedError", "denied", True)


@pytest.mark.parametrize(
    ("report", "loaded_earlier", "expected"),
    [
        (CollectionReport(failures=[failure("a")]), 0, "The account failed; nothing was loaded."),
        (
            CollectionReport(failures=[failure("a"), failure("b")]),
            0,
            "All 2 accounts failed; nothing was loaded.",
        ),
        (
            CollectionReport(windows=[window("a")], failures=[failure("b")]),
            0,
            "1 of 2 accounts failed; the other one was loaded.",
        ),
        (
            CollectionReport(windows=[window("a"), window("c")], failures=[failure("b")]),
            0,
            "1 of 3 accounts failed; the other 2 were loaded.",
        ),
        # A retry re-reads only the failed account; the first attempt loaded the other.
        (
            CollectionReport(failures=[failure("b")]),
            1,
            "1 of 2 accounts failed; the other one was loaded.",
        ),
        (
            CollectionReport(
                windows=[window("a")], failures=[failure("b")], skipped_accounts=["c"]
            ),
            0,
            "1 of 3 accounts failed; 1 loaded, 1 skipped (not active).",
        ),
        # An account that failed on its second window counts as failed, not loaded.
        (
            CollectionReport(windows=[window("a"), window("b")], failures=[failure("b")]),
            0,
            "1 of 2 accounts failed; the other one was loaded.",
        ),
    ],
)
def test_failure_summary_is_true_for_one_all_and_some(
    report: CollectionReport, loaded_earlier: int, expected: str
) -> None:
    assert report.failure_summary(loaded_earlier=loaded_earlier) == expected


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [(1, "The account failed; nothing was loaded."), (2, "All 2 accounts failed; nothing")],
)
def test_a_failed_run_describes_one_and_all_accounts_correctly(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    accounts: int,
    expected: str,
) -> None:
    ids = [add_account(connection, key_ring, None, f"12345678901{i}") for i in range(accounts)]
    # Tampered credentials fail before any request is made.
    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = "
        "set_byte(credentials_encrypted, 25, get_byte(credentials_encrypted, 25) # 1)"
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources={
                "postgres": PostgresResource(database_url=database_url),
                "credential_decryptor": CredentialDecryptor(encryption_key=encryption_key),
                "gcp_billing_export": GcpBillingExportResource(),
                "aws_cost_explorer": AwsCostExplorerResource(),
                "azure_cost_management": AzureCostManagementResource(),
            },
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], START),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(ids[-1], END),
            },
            raise_on_error=False,
        )
    assert not result.success
    step_failure = next(event for event in result.all_events if event.is_step_failure)
    assert step_failure.step_failure_data is not None
    user_failure = step_failure.step_failure_data.user_failure_data
    assert user_failure is not None
    first_line, *lines = user_failure.description.splitlines()
    assert first_line.startswith(expected)
    assert "the others were loaded" not in user_failure.description
    assert [line.split(":")[0] for line in lines] == [f"- {account}" for account in ids]
