"""A full GCP run with DEBUG logging leaks no part of the service-account key, no signed
assertion and no access token, anywhere Dagster keeps (sibling of
tests/cli/test_secrets_never_leave.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.assets import cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.providers.gcp.onboarding import register_billing_export
from finops_pipeline.providers.gcp.sandbox import BigQuerySandbox
from finops_pipeline.resources import default_resources
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import account_date_key
from tests.cli.test_secrets_never_leave import run_texts, stored_files
from tests.dates import RECENT_START
from tests.providers.gcp.conftest import (
    BILLING_PROJECT,
    PROJECT_A,
    PROJECT_B,
    credentials_for,
    export_row,
)

pytestmark = pytest.mark.integration

_GOOGLE_LOGGERS = ("google", "google.auth", "google.oauth2", "google.cloud.bigquery", "urllib3")


@pytest.fixture
def debug_logging() -> Iterator[None]:
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in _GOOGLE_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def _fragments(info: dict[str, Any]) -> dict[str, str]:
    pem_lines = [line for line in info["private_key"].splitlines() if line and "---" not in line]
    return {
        "whole key JSON": json.dumps(info),
        "private key": info["private_key"],
        "private key id": info["private_key_id"],
        **{f"PEM line {n}": line for n, line in enumerate(pem_lines)},
    }


def test_full_gcp_run_at_debug_leaks_no_key_assertion_or_token(
    bigquery_sandbox: BigQuerySandbox,
    make_export,
    reader_key_info: dict[str, Any],
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
    days = [RECENT_START + dt.timedelta(days=n) for n in range(3)]
    export = make_export(
        [
            export_row(project, dt.datetime.combine(day, dt.time(5), tzinfo=dt.UTC), 2.0)
            for project in (PROJECT_A, PROJECT_B)
            for day in days
        ]
    )
    good = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-gcp",
        credentials=credentials_for(export, reader_key_info),
        projects=[(PROJECT_A, "a"), (PROJECT_B, "b")],
    )
    # Another tenant pasted a key whose private half Google does not know: refused.
    other = bigquery_sandbox.create_service_account(
        "other-reader@billing-host-01.iam.gserviceaccount.com", project_id=BILLING_PROJECT
    )
    forged_info = dict(reader_key_info, private_key=other["private_key"])
    forged = register_billing_export(
        connection,
        key_ring,
        tenant_id="tenant-forged",
        credentials=credentials_for(export, forged_info),
        projects=[(PROJECT_A, "a")],
    )
    accounts = [project.account_id for project in [*good, *forged]]
    # Bound exactly as in production: dg.EnvVar for every secret.
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENCRYPTION_KEY", encryption_key)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    capfd.readouterr()
    tokens_before = set(bigquery_sandbox.issued_tokens())
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, accounts)
        result = dg.materialize(
            [cost_data],
            instance=instance,
            resources=default_resources(),
            tags={
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(accounts[0], days[0]),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(accounts[-1], days[-1]),
            },
            raise_on_error=False,
        )
        texts = run_texts(instance, result.run_id)
    texts.update(stored_files(home))

    assert not result.success
    loaded = connection.execute("SELECT count(DISTINCT cloud_account_id) FROM cost_data").fetchone()
    assert loaded == (2,)
    failure = next(e for e in result.all_events if e.is_step_failure)
    texts["error"] = failure.step_failure_data.user_failure_data.description
    assert "ServiceAccountKeyError" in texts["error"]
    captured = capfd.readouterr()
    texts["stdout"], texts["stderr"] = captured.out, captured.err
    texts["log_text"] = caplog.text
    texts["log_records"] = "\n".join(
        f"{r.getMessage()} {r.__dict__!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert texts["log_records"], "nothing was logged; the scan would prove nothing"

    tokens = set(bigquery_sandbox.issued_tokens()) - tokens_before
    assert tokens  # the good key really signed in
    secrets = {
        **_fragments(reader_key_info),
        **{f"forged {name}": value for name, value in _fragments(forged_info).items()},
        "encryption key": encryption_key,
        **{f"access token {n}": token for n, token in enumerate(tokens)},
        **{
            f"signed assertion {n}": assertion
            for n, assertion in enumerate(bigquery_sandbox.received_assertions())
        },
    }
    leaks = [
        f"{name} in {where}"
        for where, text in texts.items()
        for name, value in secrets.items()
        if value in text
    ]
    assert leaks == []
