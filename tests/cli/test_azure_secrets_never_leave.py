"""A full Azure run at DEBUG, with azure-core's HTTP logging policy on, leaks no client secret,
no bearer token and no key, anywhere Dagster keeps.

The real azure-identity and azure-mgmt-costmanagement clients talk to the sandbox tenant
through an azure-core transport, bound by the registry's hook as in production. The run holds
a good subscription, one whose app lacks the Cost Management Reader role (a 403) and one whose
stored client secret is wrong (Entra ID refuses it), so error text is produced and scanned too.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets import cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.providers.azure.sandbox import (
    SANDBOX_RESOURCE_MANAGER,
    sandbox_credentials,
)
from finops_pipeline.providers.azure.sandbox.hook import shared_sandbox
from finops_pipeline.resources import default_resources
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import account_date_key
from tests.azure_sandbox import (
    AZURE_TENANT,
    DEVELOPMENT,
    NO_READER,
    PRODUCTION,
    add_azure_subscription,
)
from tests.cli.test_secrets_never_leave import debug_logging, run_texts, stored_files
from tests.sync.test_mixed_providers import WINDOW

pytestmark = pytest.mark.integration

__all__ = ["debug_logging"]  # the fixture, imported to be used here

WRONG_SECRET = "wrong~client-secret-the-operator-pasted-0001"
HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def test_full_azure_run_at_debug_leaks_no_secret_or_token(
    debug_logging: None,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    monkeypatch.delenv("FINOPS_SANDBOX_AS_OF", raising=False)
    good = add_azure_subscription(connection, key_ring, PRODUCTION)
    denied = add_azure_subscription(connection, key_ring, NO_READER)
    wrong = register_account(
        connection,
        key_ring,
        tenant_id="contoso",
        name="wrong secret",
        provider="azure",
        provider_account_id=DEVELOPMENT.subscription_id,
        credentials=dataclasses.replace(
            sandbox_credentials(AZURE_TENANT), client_secret=Secret(WRONG_SECRET)
        ),
        endpoint_url=SANDBOX_RESOURCE_MANAGER,
    )
    accounts = [good, denied, wrong]
    sandbox = shared_sandbox()
    tokens_before = len(sandbox.issued_tokens)

    # Bound exactly as in production: dg.EnvVar for every secret.
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENCRYPTION_KEY", encryption_key)
    for name in ("azure", "azure.core", "azure.identity", HTTP_LOGGER):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    capfd.readouterr()
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, accounts)
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources=default_resources(),
            tags={
                "dagster/asset_partition_range_start": account_date_key(good, WINDOW.start),
                "dagster/asset_partition_range_end": account_date_key(wrong, WINDOW.end),
            },
            raise_on_error=False,
        )
        texts = run_texts(instance, result.run_id)
    texts.update(stored_files(home))

    # The run did what it should: the good subscription loaded, the other two failed clearly.
    assert not result.success
    loaded = connection.execute("SELECT DISTINCT cloud_account_id::text FROM cost_data").fetchall()
    assert loaded == [(good,)]
    failure = next(e for e in result.all_events if e.is_step_failure)
    texts["error"] = failure.step_failure_data.user_failure_data.description
    assert "AzureAccessDeniedError" in texts["error"]
    assert "AzureAuthenticationError" in texts["error"] and "AADSTS7000215" in texts["error"]

    captured = capfd.readouterr()
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    texts["log_text"] = caplog.text
    texts["log_records"] = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )
    tokens = sandbox.issued_tokens[tokens_before:]
    assert tokens  # tokens really were issued and used
    secrets = {
        "client secret": sandbox_credentials(AZURE_TENANT).client_secret.reveal(),
        "wrong client secret": WRONG_SECRET,
        "encryption key": encryption_key,
        "encryption key (upper)": encryption_key.upper(),
    }
    secrets.update({f"bearer token {i}": token for i, token in enumerate(tokens)})
    # A token's signature alone is as good as the token to anyone who can read it.
    secrets.update({f"token signature {i}": t.rsplit(".", 1)[1] for i, t in enumerate(tokens)})
    leaks = [
        f"{secret_name} in {where}"
        for where, text in texts.items()
        for secret_name, value in secrets.items()
        if value in text
    ]
    assert leaks == []

    # The scan was meaningful: azure-core's HTTP logging policy logged every request, with
    # the Authorization header redacted rather than absent.
    http_lines = [r.getMessage() for r in caplog.records if r.name == HTTP_LOGGER]
    assert any("Request URL" in line for line in http_lines)
    assert any("'Authorization': 'REDACTED'" in line for line in http_lines)
