"""A full run with DEBUG logging everywhere leaks no secret and no key, anywhere Dagster keeps.

Known secrets: an access key's secret, the pipeline principal's secret, the tenant's external
id, the encryption key, and every session key and token STS handed out during the run. The run
includes an account with tampered credentials, so error text is produced and scanned too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._serdes import serialize_value
from moto.core.authorization import enable_iam_authentication

from finops_pipeline.assets import cost_data
from finops_pipeline.cli.onboarding import add_account
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.tenants import ensure_tenant
from finops_pipeline.resources import default_resources
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import account_date_key
from tests.aws_iam import (
    CE_READ_POLICY,
    CUSTOMER_ACCOUNT,
    assumed_role_secrets,
    create_customer_role,
    create_pipeline_principal,
    create_user,
)
from tests.ce_responses import TWO_SERVICES, paginate, queue_moto_pages, simple_days
from tests.dates import RECENT_START

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("sts_trust")]

START = RECENT_START
SERVICES = TWO_SERVICES


@pytest.fixture
def debug_logging() -> Iterator[None]:
    root, boto = logging.getLogger(), logging.getLogger("botocore")
    levels = (root.level, boto.level)
    root.setLevel(logging.DEBUG)
    boto.setLevel(logging.DEBUG)
    yield
    root.setLevel(levels[0])
    boto.setLevel(levels[1])


def run_texts(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Everything Dagster stored about the run, as text."""
    run = instance.get_run_by_id(run_id)
    assert run is not None
    texts = {
        "run_config": json.dumps(run.run_config, default=str),
        "run_tags": json.dumps(run.tags),
        "run_record": serialize_value(run),
        "job_snapshot": serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
        "execution_plan": serialize_value(
            instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        ),
    }
    # Every event: its message, its metadata, its error data.
    texts["events"] = "\n".join(serialize_value(event) for event in instance.all_logs(run_id))
    return texts


def stored_files(root: Path) -> dict[str, str]:
    """Every file under the Dagster home: compute logs, sqlite storages, anything else."""
    return {
        str(path): path.read_bytes().decode("utf-8", errors="replace")
        for path in root.rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize("sdk_quieting", [True, False], ids=["defaults", "redaction-only"])
def test_full_run_at_debug_leaks_no_secret(
    aws: None,
    debug_logging: None,
    sdk_quieting: bool,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    if not sdk_quieting:
        # The backstop alone: botocore really logs bodies and headers at DEBUG.
        monkeypatch.setattr(
            "finops_pipeline.providers.aws.client.quiet_aws_sdk_loggers", lambda: None
        )
        monkeypatch.setattr(
            "finops_pipeline.providers.aws.roles.quiet_aws_sdk_loggers", lambda: None
        )
    keys_user = create_user("keys", CE_READ_POLICY)
    broken_user = create_user("broken", CE_READ_POLICY)
    pipeline_user, _ = create_pipeline_principal()
    external_id = ensure_tenant(connection, "tenant-role")
    role_arn = create_customer_role(
        "finops-reader", pipeline_arn=pipeline_user.arn, external_id=external_id
    )
    accounts = [
        add_account(
            connection,
            key_ring,
            tenant_id="tenant-keys",
            name="keys",
            provider="aws",
            provider_account_id="123456789012",
            access_key_id=keys_user.access_key_id,
            secret_access_key=Secret(keys_user.secret_access_key),
        ).account_id,
        add_account(
            connection,
            key_ring,
            tenant_id="tenant-role",
            name="role",
            provider="aws",
            provider_account_id=CUSTOMER_ACCOUNT,
            role_arn=role_arn,
        ).account_id,
        add_account(
            connection,
            key_ring,
            tenant_id="tenant-keys",
            name="broken",
            provider="aws",
            provider_account_id="123456789013",
            access_key_id=broken_user.access_key_id,
            secret_access_key=Secret(broken_user.secret_access_key),
        ).account_id,
    ]
    connection.execute(
        "UPDATE cloud_accounts SET credentials_encrypted = "
        "set_byte(credentials_encrypted, 40, get_byte(credentials_encrypted, 40) # 1) "
        "WHERE id = %s",
        (accounts[2],),
    )
    days = simple_days(START, 4, SERVICES)
    queue_moto_pages(paginate(days, per_page=2))
    queue_moto_pages(paginate(days, per_page=2), account_id=CUSTOMER_ACCOUNT)

    # Bound exactly as in production: dg.EnvVar for every secret.
    for name, value in {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_PIPELINE_AWS_ACCESS_KEY_ID": pipeline_user.access_key_id,
        "FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY": pipeline_user.secret_access_key,
    }.items():
        monkeypatch.setenv(name, value)
    # Only what the pipeline logs counts: the set-up above (creating users and roles in moto)
    # logged its own secrets through botocore.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="botocore")
    caplog.clear()
    capfd.readouterr()
    home = tmp_path / "dagster_home"
    home.mkdir()
    with (
        dg.instance_for_test(temp_dir=str(home)) as instance,
        enable_iam_authentication(),
    ):
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, accounts)
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources=default_resources(),
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(accounts[0], START),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(
                    accounts[-1], START + dt.timedelta(days=3)
                ),
            },
            raise_on_error=False,
        )
        texts = run_texts(instance, result.run_id)
    texts.update(stored_files(home))

    # The run did what it should: two accounts loaded, the tampered one failed.
    assert not result.success
    loaded = connection.execute("SELECT count(DISTINCT cloud_account_id) FROM cost_data").fetchone()
    assert loaded == (2,)
    failure = next(e for e in result.all_events if e.is_step_failure)
    texts["error"] = failure.step_failure_data.user_failure_data.description
    assert "TamperedCiphertextError" in texts["error"]

    captured = capfd.readouterr()
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    texts["log_text"] = caplog.text
    texts["log_records"] = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )
    session_secrets = assumed_role_secrets()
    assert len(session_secrets) >= 2  # the role really was assumed
    secrets = {
        "access key secret": keys_user.secret_access_key,
        "tampered account's secret": broken_user.secret_access_key,
        "pipeline principal secret": pipeline_user.secret_access_key,
        "external id": external_id,
        "encryption key": encryption_key,
        "encryption key (upper)": encryption_key.upper(),
    }
    secrets.update({f"STS session value {i}": v for i, v in enumerate(session_secrets)})
    leaks = [
        f"{secret_name} in {where}"
        for where, text in texts.items()
        for secret_name, value in secrets.items()
        if value in text
    ]
    if leaks:
        for where, text in texts.items():
            for secret_name, value in secrets.items():
                at = text.find(value)
                if at >= 0:
                    print("LEAK", secret_name, where, repr(text[max(0, at - 300) : at + 60]))
    assert leaks == []

    if not sdk_quieting:
        # Prove the scan was meaningful: botocore really logged bodies at DEBUG, and the
        # AssumeRole response (which carries the session keys) was masked, not absent.
        assert "Response body" in texts["log_records"]
        assert "<SecretAccessKey>********</SecretAccessKey>" in texts["log_records"]
