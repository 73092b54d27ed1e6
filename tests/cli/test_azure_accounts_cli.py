"""``finops accounts add --provider azure`` and ``validate`` end to end: real Postgres, click's
runner, the real Azure SDK against the sandbox tenant (its reserved endpoints)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from finops_pipeline.cli.commands import main
from finops_pipeline.db.request_budget import UNIT_QPU, record_requests
from finops_pipeline.providers.azure.sandbox import (
    SANDBOX_AUTHORITY_HOST,
    SANDBOX_RESOURCE_MANAGER,
    sandbox_credentials,
)
from tests.azure_sandbox import AZURE_TENANT, NO_READER, PRODUCTION

pytestmark = pytest.mark.integration

SECRET = sandbox_credentials(AZURE_TENANT).client_secret.reveal()


@pytest.fixture
def env(database_url: str, encryption_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_HOME": str(tmp_path / "home"),
        "FINOPS_AZURE_CLIENT_SECRET": "",
        "ENCRYPTION_KEYS_PREVIOUS": "",
    }


def finops(env: dict[str, str], *args: str, input: str | None = None, **extra: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, **extra}, input=input)


def add(env: dict[str, str], subscription: str, *extra_args: str, **extra_env: str) -> Result:
    return finops(
        env,
        "accounts", "add", "--tenant", "contoso", "--name", "prod", "--provider", "azure",
        "--subscription-id", subscription,
        "--azure-tenant-id", AZURE_TENANT.tenant_id, "--client-id", AZURE_TENANT.client_id,
        "--endpoint-url", SANDBOX_RESOURCE_MANAGER, "--authority-host", SANDBOX_AUTHORITY_HOST,
        *extra_args,
        **extra_env,
    )  # fmt: skip


def test_add_stores_the_secret_encrypted_and_prints_the_role_to_grant(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    result = add(env, PRODUCTION.subscription_id, FINOPS_AZURE_CLIENT_SECRET=SECRET)

    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"[0-9a-f-]{36}\n", result.stdout)
    account = result.stdout.strip()
    assert "registered azure_client_secret account" in result.stderr
    assert '--role "Cost Management Reader"' in result.stderr
    assert f"--scope /subscriptions/{PRODUCTION.subscription_id}" in result.stderr
    assert f"--assignee {AZURE_TENANT.client_id}" in result.stderr
    assert SECRET not in result.output + result.stderr
    row = connection.execute(
        "SELECT provider, provider_account_id, credential_kind, endpoint_url, "
        "position(%s::bytea in credentials_encrypted) FROM cloud_accounts WHERE id = %s",
        (SECRET.encode(), account),
    ).fetchone()
    assert row == (
        "azure",
        PRODUCTION.subscription_id,
        "azure_client_secret",
        SANDBOX_RESOURCE_MANAGER,
        0,
    )

    validated = finops(env, "accounts", "validate", account)
    assert validated.exit_code == 0, validated.output
    assert f"account {account}: valid" in validated.stdout
    assert "ok   token:" in validated.stdout and "ok   cost_query:" in validated.stdout
    assert "QPU consumed: 1" in validated.stdout
    report = json.loads(finops(env, "accounts", "validate", account, "--output", "json").stdout)
    assert report["ok"] and report["quota_consumed"] == "1" and report["quota_unit"] == "QPU"


def test_the_secret_comes_from_stdin_never_argv(env: dict[str, str]) -> None:
    piped = add(env, PRODUCTION.subscription_id, "--secret-stdin", input=SECRET + "\n")
    assert piped.exit_code == 0, piped.stderr
    on_argv = add(env, NO_READER.subscription_id, "--client-secret", SECRET)
    assert on_argv.exit_code == 2 and "No such option '--client-secret'" in on_argv.output
    missing = add(env, NO_READER.subscription_id)
    assert missing.exit_code == 1
    assert "FINOPS_AZURE_CLIENT_SECRET or pipe it to --secret-stdin" in missing.stderr


def test_validate_names_the_missing_role_and_add_validate_keeps_nothing_unproven(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    added = add(env, NO_READER.subscription_id, FINOPS_AZURE_CLIENT_SECRET=SECRET)
    validated = finops(env, "accounts", "validate", added.stdout.strip())
    assert validated.exit_code == 1
    assert "AzureAccessDeniedError" in validated.stdout
    assert "Cost Management Reader" in validated.stdout and "QPU consumed" in validated.stdout

    rejected = add(
        env, PRODUCTION.subscription_id, "--validate", FINOPS_AZURE_CLIENT_SECRET="wrong-secret"
    )
    assert rejected.exit_code == 1
    assert "AzureAuthenticationError" in rejected.stderr
    assert connection.execute(
        "SELECT count(*) FROM cloud_accounts WHERE provider_account_id = %s",
        (PRODUCTION.subscription_id,),
    ).fetchone() == (0,)


@pytest.mark.parametrize(
    ("subscription", "extra", "message"),
    [
        ("not-a-subscription", (), "is not an Azure subscription id"),
        (PRODUCTION.subscription_id, ("--endpoint-url", "http://127.0.0.1:1"), "https"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    env: dict[str, str],
    connection: psycopg.Connection,
    subscription: str,
    extra: tuple[str, ...],
    message: str,
) -> None:
    result = add(env, subscription, *extra, FINOPS_AZURE_CLIENT_SECRET=SECRET)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output + result.stderr
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)


def test_accounts_list_shows_the_qpu_an_azure_subscription_consumed_this_month(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    added = add(env, PRODUCTION.subscription_id, FINOPS_AZURE_CLIENT_SECRET=SECRET)
    account_id = added.stdout.strip()
    assert finops(env, "budget", "set", "--tenant", "contoso", "--unit", "qpu",
                  "--monthly-requests", "500").exit_code == 0  # fmt: skip
    record_requests(connection, "contoso", account_id, "azure", 42, unit=UNIT_QPU)
    connection.commit()

    listed = finops(env, "accounts", "list")
    assert listed.exit_code == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(account_id)]
    assert line.endswith("(0 paid requests, 42 QPU this month)")
    assert "tenant contoso: 42 of 500 QPU in " in listed.stdout

    [row] = json.loads(finops(env, "accounts", "list", "--output", "json").stdout)
    assert (row["paid_requests_this_month"], row["qpu_this_month"]) == (0, 42)
