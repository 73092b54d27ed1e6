"""``finops accounts`` and ``finops keys`` end to end: real Postgres, moto, click's runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from finops_pipeline.cli.commands import main
from finops_pipeline.security.ciphertext import generate_key
from tests.aws_iam import CE_READ_POLICY, create_user

pytestmark = pytest.mark.integration

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCLISECRET1"
KEY_ID = "AKIAIOSFODNN7CLITEST"


@pytest.fixture
def env(database_url: str, encryption_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_HOME": str(tmp_path / "home"),
        "FINOPS_AWS_SECRET_ACCESS_KEY": "",
        "ENCRYPTION_KEYS_PREVIOUS": "",
    }


def finops(env: dict[str, str], *args: str, input: str | None = None, **extra: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, **extra}, input=input)


def add_keys(env: dict[str, str], tenant: str = "tenant-a", number: str = "123456789012") -> str:
    result = finops(
        env,
        "accounts", "add", "--tenant", tenant, "--name", "prod", "--account-number", number,
        "--access-key-id", KEY_ID,
        FINOPS_AWS_SECRET_ACCESS_KEY=SECRET,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_add_with_secret_from_env_prints_only_the_id(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    result = finops(
        env,
        "accounts", "add", "--tenant", "tenant-a", "--name", "prod",
        "--account-number", "123456789012", "--access-key-id", KEY_ID,
        FINOPS_AWS_SECRET_ACCESS_KEY=SECRET,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"[0-9a-f-]{36}\n", result.stdout)
    assert "registered aws_access_key account" in result.stderr
    assert SECRET not in result.output and SECRET not in result.stderr
    row = connection.execute(
        "SELECT tenant_id, credential_kind, status, position(%s::bytea in credentials_encrypted) "
        "FROM cloud_accounts WHERE id = %s",
        (SECRET.encode(), result.stdout.strip()),
    ).fetchone()
    assert row == ("tenant-a", "aws_access_key", "active", 0)  # stored encrypted


def test_add_reads_the_secret_from_stdin(env: dict[str, str]) -> None:
    result = finops(
        env,
        "accounts", "add", "--tenant", "tenant-a", "--name", "prod",
        "--account-number", "123456789012", "--access-key-id", KEY_ID, "--secret-stdin",
        input=SECRET + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    listed = json.loads(finops(env, "accounts", "list", "--output", "json").stdout)
    assert [row["id"] for row in listed] == [result.stdout.strip()]


def test_secret_on_argv_is_not_accepted_and_a_missing_secret_says_where_to_put_it(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    on_argv = finops(
        env,
        "accounts", "add", "--tenant", "t", "--name", "n", "--account-number", "123456789012",
        "--access-key-id", KEY_ID, "--secret-access-key", SECRET,
    )  # fmt: skip
    assert on_argv.exit_code == 2 and "No such option" in on_argv.stderr
    missing = finops(
        env,
        "accounts", "add", "--tenant", "t", "--name", "n", "--account-number", "123456789012",
        "--access-key-id", KEY_ID,
    )  # fmt: skip
    assert missing.exit_code == 1
    assert "FINOPS_AWS_SECRET_ACCESS_KEY" in missing.stderr and "--secret-stdin" in missing.stderr
    assert missing.stdout == ""
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account-number", "12345", "--access-key-id", KEY_ID], "12 digits"),
        (["--account-number", "123456789012"], "exactly one credential kind"),
        (
            ["--account-number", "123456789012", "--role-arn", "arn:aws:iam::999999999999:role/r"],
            "not 123456789012",
        ),
        (["--account-number", "123456789012", "--role-arn", "not-an-arn"], "not an IAM role ARN"),
        (
            ["--account-number", "123456789012", "--access-key-id", KEY_ID, "--provider", "oracle"],
            "UnsupportedProviderError",
        ),
    ],
)
def test_bad_input_gets_a_typed_error_and_stores_nothing(
    env: dict[str, str], connection: psycopg.Connection, args: list[str], message: str
) -> None:
    result = finops(
        env, "accounts", "add", "--tenant", "t", "--name", "n", *args,
        FINOPS_AWS_SECRET_ACCESS_KEY=SECRET,
    )  # fmt: skip
    assert result.exit_code == 1
    assert message in result.stderr
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)
    assert connection.execute("SELECT count(*) FROM tenants").fetchone() == (0,)


def test_duplicate_account_is_refused_with_its_id(env: dict[str, str]) -> None:
    first = add_keys(env)
    again = finops(
        env,
        "accounts", "add", "--tenant", "tenant-a", "--name", "again",
        "--account-number", "123456789012", "--access-key-id", KEY_ID,
        FINOPS_AWS_SECRET_ACCESS_KEY=SECRET,
    )  # fmt: skip
    assert again.exit_code == 1 and first in again.stderr


def test_role_onboarding_prints_the_external_id_and_policies_once_per_tenant(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    principal = "arn:aws:iam::111122223333:user/finops-pipeline"

    def add_role(tenant: str, number: str) -> Result:
        return finops(
            env,
            "accounts", "add", "--tenant", tenant, "--name", "prod", "--account-number", number,
            "--role-arn", f"arn:aws:iam::{number}:role/finops-reader",
            "--pipeline-principal-arn", principal,
        )  # fmt: skip

    first = add_role("tenant-a", "210987654321")
    assert first.exit_code == 0, first.stderr
    external_id = re.search(r"external id for tenant tenant-a: (\S+)", first.stderr).group(1)
    trust = json.loads(first.stderr.split("trust policy for the role:\n")[1].split("\n\n")[0])
    assert trust["Statement"][0]["Principal"] == {"AWS": principal}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}
    permissions = json.loads(
        first.stderr.split("permission policy for the role:\n")[1].split("\n\n")[0]
    )
    assert permissions["Statement"][0]["Action"] == ["ce:GetCostAndUsage"]
    assert re.fullmatch(r"[0-9a-f-]{36}\n", first.stdout)

    second = add_role("tenant-a", "210987654322")
    third = add_role("tenant-b", "210987654321")
    assert f"tenant tenant-a: {external_id}" in second.stderr
    assert external_id not in third.stderr
    stored = dict(connection.execute("SELECT tenant_id, external_id FROM tenants").fetchall())
    assert stored["tenant-a"] == external_id and stored["tenant-b"] != external_id
    # The list never shows the external id or any credential.
    listing = finops(env, "accounts", "list", "--output", "json").stdout
    assert external_id not in listing and "credentials" not in listing


def test_disable_and_remove_keep_history_unless_purged(
    env: dict[str, str], connection: psycopg.Connection
) -> None:
    keep, purge = add_keys(env, number="123456789012"), add_keys(env, number="123456789013")
    for account_id in (keep, purge):
        connection.execute(
            """
            INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service,
                usage_type, unblended_cost, amortized_cost, net_unblended_cost, usage_quantity,
                currency)
            VALUES ('tenant-a', %s, '2025-03-01', 'aws', 'S', 'U', 1, 1, 1, 1, 'USD')
            """,
            (account_id,),
        )
    assert finops(env, "accounts", "disable", keep).exit_code == 0
    text = finops(env, "accounts", "list").stdout
    assert re.search(rf"{keep} .* disabled", text)

    assert finops(env, "accounts", "remove", keep).exit_code == 0
    removed = finops(env, "accounts", "remove", purge, "--purge")
    assert removed.exit_code == 0 and "purged 1 cost rows" in removed.stderr
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)
    left = connection.execute("SELECT cloud_account_id::text FROM cost_data").fetchall()
    assert left == [(keep,)]

    missing = finops(env, "accounts", "remove", keep)
    assert missing.exit_code == 1 and "AccountNotFoundError" in missing.stderr


def test_validate_runs_the_paid_probe_and_reports_it(aws: None, env: dict[str, str]) -> None:
    allowed = create_user("reader", CE_READ_POLICY)
    denied = create_user("no-ce", None)
    ids = []
    for user, number in ((allowed, "123456789012"), (denied, "123456789013")):
        result = finops(
            env,
            "accounts", "add", "--tenant", "t", "--name", user.arn, "--account-number", number,
            "--access-key-id", user.access_key_id, "--secret-stdin",
            input=user.secret_access_key,
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        ids.append(result.stdout.strip())
    with enable_iam_authentication():
        good = finops(env, "accounts", "validate", ids[0], "--output", "json")
        bad = finops(env, "accounts", "validate", ids[1])
    assert good.exit_code == 0, good.output
    report = json.loads(good.stdout)
    assert report["ok"] and report["paid_requests"] == 1
    assert report["paid_request_cost_usd"] == "0.01"
    assert bad.exit_code == 1
    assert "FAIL cost_explorer_allowed" in bad.stdout
    assert "paid Cost Explorer requests: 0" in bad.stdout
    for output in (good.output, bad.output):
        assert allowed.secret_access_key not in output and denied.secret_access_key not in output


def test_add_with_validate_keeps_nothing_when_validation_fails(
    aws: None, env: dict[str, str], connection: psycopg.Connection
) -> None:
    denied = create_user("no-ce", None)
    with enable_iam_authentication():
        result = finops(
            env,
            "accounts", "add", "--tenant", "t", "--name", "n", "--account-number", "123456789012",
            "--access-key-id", denied.access_key_id, "--validate",
            FINOPS_AWS_SECRET_ACCESS_KEY=denied.secret_access_key,
        )  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    assert "not kept" in result.stderr
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)


def test_keys_generate_and_rotate(
    env: dict[str, str], connection: psycopg.Connection, encryption_key: str
) -> None:
    generated = finops(env, "keys", "generate")
    assert re.fullmatch(r"[0-9a-f]{64}\n", generated.stdout)
    ids = [add_keys(env, number=f"12345678901{i}") for i in range(3)]

    new_key = generated.stdout.strip()
    rotated = {"ENCRYPTION_KEY": new_key, "ENCRYPTION_KEYS_PREVIOUS": encryption_key}
    first = finops(env, "keys", "rotate", "--batch-size", "2", **rotated)
    assert first.exit_code == 0, first.stderr
    assert "re-encrypted:    3" in first.stdout and "failed:          0" in first.stdout
    second = finops(env, "keys", "rotate", "--output", "json", **rotated)
    assert json.loads(second.stdout)["already_current"] == 3

    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = "
        "set_byte(credentials_encrypted, 30, get_byte(credentials_encrypted, 30) # 1) "
        "WHERE id = %s",
        (ids[0],),
    )
    broken = finops(env, "keys", "rotate", **rotated)
    assert broken.exit_code == 1
    assert "failed:          1" in broken.stdout
    assert f"{ids[0]}: TamperedCiphertextError" in broken.stderr
    for output in (first.output, second.output, broken.output, broken.stderr):
        assert new_key not in output and encryption_key not in output and SECRET not in output

    wrong = finops(env, "keys", "rotate", ENCRYPTION_KEY=generate_key())
    assert wrong.exit_code == 1 and "WrongKeyError" in wrong.stderr


def test_role_onboarding_round_trip_with_the_printed_trust_policy(
    env: dict[str, str], connection: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Add a role, create it in AWS from exactly what was printed, validate; then an unsafe one."""
    from tests.aws_iam import (
        CUSTOMER_ACCOUNT,
        create_customer_role,
        create_pipeline_principal,
        iam_client,
        simulate_sts_trust,
    )

    simulate_sts_trust(monkeypatch)
    with mock_aws():
        pipeline_user, _ = create_pipeline_principal()
        pipeline_env = {
            **env,
            "FINOPS_PIPELINE_AWS_ACCESS_KEY_ID": pipeline_user.access_key_id,
            "FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY": pipeline_user.secret_access_key,
        }
        role_arn = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/finops-reader"
        added = finops(
            pipeline_env,
            "accounts", "add", "--tenant", "acme", "--name", "prod",
            "--account-number", CUSTOMER_ACCOUNT, "--role-arn", role_arn,
        )  # fmt: skip
        assert added.exit_code == 0, added.stderr
        account_id = added.stdout.strip()
        printed_trust = added.stderr.split("trust policy for the role:\n")[1].split("\n\n")[0]
        printed_permissions = added.stderr.split("permission policy for the role:\n")[1]
        printed_permissions = printed_permissions.split("\n\n")[0]
        # No --pipeline-principal-arn: the ARN came from GetCallerIdentity of our principal.
        assert json.loads(printed_trust)["Statement"][0]["Principal"] == {"AWS": pipeline_user.arn}
        # The customer creates the role from what was printed, verbatim.
        iam = iam_client(CUSTOMER_ACCOUNT)
        iam.create_role(RoleName="finops-reader", AssumeRolePolicyDocument=printed_trust)
        iam.put_role_policy(
            RoleName="finops-reader", PolicyName="finops", PolicyDocument=printed_permissions
        )
        unsafe_arn = create_customer_role(
            "too-trusting", pipeline_arn=pipeline_user.arn, external_id=None
        )
        unsafe = finops(
            pipeline_env,
            "accounts", "add", "--tenant", "other-tenant", "--name", "other",
            "--account-number", CUSTOMER_ACCOUNT, "--role-arn", unsafe_arn,
        )  # fmt: skip
        assert unsafe.exit_code == 0, unsafe.stderr
        with enable_iam_authentication():
            good = finops(pipeline_env, "accounts", "validate", account_id)
            bad = finops(pipeline_env, "accounts", "validate", unsafe.stdout.strip())
    assert good.exit_code == 0, good.output
    assert "ok   external_id_required" in good.stdout
    assert "paid Cost Explorer requests: 1 ($0.01)" in good.stdout
    assert bad.exit_code == 1
    assert "FAIL external_id_required" in bad.stdout and "account disabled" in bad.stderr
    status = dict(connection.execute("SELECT id::text, status FROM cloud_accounts").fetchall())
    assert status == {account_id: "active", unsafe.stdout.strip(): "disabled"}
    assert pipeline_user.secret_access_key not in good.output + bad.output
