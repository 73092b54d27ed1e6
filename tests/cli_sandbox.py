"""Helpers for tests that run `finops` as a user does, against sandbox accounts."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg

from finops_pipeline.db.accounts import register_account
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.providers.aws.sandbox import SANDBOX_ENDPOINT_URL, sandbox_credentials
from finops_pipeline.security.ciphertext import KeyRing

# Accounts of the sandbox's synthetic organisation (standalone ones, with their own costs).
SANDBOX_NUMBERS = ("320000000001", "320000000002")
CLI_TIMEOUT_SECONDS = 300


def recent_window(days: int) -> tuple[dt.date, dt.date]:
    """The last ``days`` complete UTC days: always inside Cost Explorer's daily history."""
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return end - dt.timedelta(days=days - 1), end


def add_sandbox_account(
    database_url: str, ring: KeyRing, number: str, tenant: str = "globex"
) -> str:
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as connection:
        return register_account(
            connection,
            ring,
            tenant_id=tenant,
            name=f"sandbox {number}",
            provider="aws",
            provider_account_id=number,
            credentials=sandbox_credentials(number),
            endpoint_url=SANDBOX_ENDPOINT_URL,
        )


def cli_env(database_url: str, encryption_key: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `finops` process: this test's database, key and homes."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FINOPS_SANDBOX_", "FINOPS_RETRY", "FINOPS_CE_"))
    }
    env.update(
        DATABASE_URL=database_url,
        ENCRYPTION_KEY=encryption_key,
        FINOPS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        FINOPS_SANDBOX_REQUEST_LOG=str(home / "sandbox-requests.jsonl"),
    )
    env.update(extra)
    return env


def finops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finops_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


def paid_requests_by_account_number(home: Path) -> Counter[str]:
    """Paid sandbox requests per AWS account number, over every process that logged them."""
    log = home / "sandbox-requests.jsonl"
    counts: Counter[str] = Counter()
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record["outcome"] == "paid":
                counts[record["account"]] += 1
    return counts


def cost_rows(database_url: str) -> list[tuple[object, ...]]:
    """Every cost_data row with its values, in key order."""
    with psycopg.connect(to_libpq_url(database_url)) as connection:
        return connection.execute(
            "SELECT cloud_account_id::text, date, service, usage_type, unblended_cost, "
            "amortized_cost, net_unblended_cost, usage_quantity, is_estimated, run_id "
            "FROM cost_data ORDER BY 1, 2, 3, 4"
        ).fetchall()


def last_sync(database_url: str, account_id: str) -> tuple[object, ...]:
    with psycopg.connect(to_libpq_url(database_url)) as connection:
        row = connection.execute(
            "SELECT last_sync_status, last_sync_error, last_sync_run_id FROM cloud_accounts "
            "WHERE id = %s",
            (account_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)
