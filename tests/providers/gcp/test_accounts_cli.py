"""``finops accounts add --provider gcp`` and ``validate`` end to end: real Postgres, click's
runner, the real BigQuery client against the REST double."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from finops_pipeline.cli.commands import main
from finops_pipeline.providers.gcp.client import BillingExport
from finops_pipeline.providers.gcp.sandbox import BigQuerySandbox
from tests.providers.gcp.conftest import BILLING_PROJECT, PROJECT_A, PROJECT_B, export_row, utc

pytestmark = pytest.mark.integration


@pytest.fixture
def env(database_url: str, encryption_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": encryption_key,
        "FINOPS_HOME": str(tmp_path / "home"),
        "FINOPS_GCP_SERVICE_ACCOUNT_JSON": "",
    }


def finops(env: dict[str, str], *args: str, input: str | None = None, **extra: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**env, **extra}, input=input)


def export_args(export: BillingExport, project: str = PROJECT_A) -> list[str]:
    return [
        "accounts", "add", "--provider", "gcp", "--tenant", "tenant-gcp", "--name", project,
        "--account-number", project,
        "--billing-export-table", export.table.full_name, "--location", export.location,
        "--api-endpoint", str(export.api_endpoint), "--token-endpoint", str(export.token_uri),
    ]  # fmt: skip


def _leaks(info: dict[str, Any], *texts: str) -> list[str]:
    pem_lines = [line for line in info["private_key"].splitlines() if line and "---" not in line]
    return [
        value[:12]
        for value in (info["private_key"], info["private_key_id"], *pem_lines)
        for text in texts
        if value in text
    ]


def test_add_from_stdin_and_env_prints_the_roles_and_validate_dry_runs_for_free(
    bigquery_sandbox: BigQuerySandbox,
    make_export,
    reader_key_info: dict[str, Any],
    env: dict[str, str],
    connection: psycopg.Connection,
) -> None:
    export = make_export([export_row(PROJECT_A, utc(2026, 11, 3, 5), 4.0)])
    key_file = json.dumps(reader_key_info, indent=2)  # multi-line, as Google hands it out
    added = finops(env, *export_args(export), "--key-stdin", input=key_file)
    assert added.exit_code == 0, added.output
    first = added.stdout.strip()
    assert "BigQuery Data Viewer (roles/bigquery.dataViewer) on dataset " in added.stderr
    assert f"BigQuery Job User (roles/bigquery.jobUser) on project {BILLING_PROJECT}" in (
        added.stderr
    )
    second = finops(env, *export_args(export, PROJECT_B), FINOPS_GCP_SERVICE_ACCOUNT_JSON=key_file)
    assert second.exit_code == 0, second.output
    rows = connection.execute(
        "SELECT provider, provider_account_id, credential_kind FROM cloud_accounts ORDER BY 2"
    ).fetchall()
    assert rows == [
        ("gcp", PROJECT_A, "gcp_service_account"),
        ("gcp", PROJECT_B, "gcp_service_account"),
    ]

    jobs_before = len(bigquery_sandbox.query_jobs())
    validated = finops(env, "accounts", "validate", first, "--output", "json")
    assert validated.exit_code == 0, validated.output
    report = json.loads(validated.stdout)
    assert report["ok"] and report["paid_requests"] == 0
    assert report["caller_arn"] == reader_key_info["client_email"]
    details = " ".join(check["detail"] for check in report["checks"])
    assert "exists and is readable (ingestion-time partitioned by DAY)" in details
    assert "would process about" in details
    # A dry run only: nothing was executed, nothing billed.
    assert len(bigquery_sandbox.query_jobs()) == jobs_before
    dry = bigquery_sandbox.query_jobs(include_dry_runs=True)[-1]
    assert dry.dry_run and dry.bytes_billed == 0
    listed = finops(env, "accounts", "list")
    assert not _leaks(reader_key_info, added.output, second.output, validated.output, listed.output)


def test_validate_names_the_roles_when_the_table_is_not_readable(
    make_export, reader_key_info: dict[str, Any], env: dict[str, str]
) -> None:
    export = make_export([], readable=False)
    added = finops(env, *export_args(export), "--key-stdin", input=json.dumps(reader_key_info))
    assert added.exit_code == 0, added.output
    result = finops(env, "accounts", "validate", added.stdout.strip())
    assert result.exit_code == 1
    assert "FAIL dry run: GcpAccessDeniedError" in result.stdout
    assert "BigQuery Data Viewer" in result.stdout
    assert not _leaks(reader_key_info, result.output)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--billing-export-table": "p.d.t`; DROP TABLE x --"}, "BillingTableNameError"),
        ({"--billing-export-table": "billing-host-01.ds.t WHERE 1=1"}, "BillingTableNameError"),
        ({"--account-number": "Robert'); --"}, "BillingExportSettingError"),
        ({"--location": "US' OR 1=1"}, "BillingExportSettingError"),
    ],
)
def test_hostile_input_is_refused_with_a_typed_error_and_nothing_stored(
    make_export,
    reader_key_info: dict[str, Any],
    env: dict[str, str],
    connection: psycopg.Connection,
    change: dict[str, str],
    message: str,
) -> None:
    args = export_args(make_export([]))
    for option, value in change.items():
        args[args.index(option) + 1] = value
    result = finops(env, *args, "--key-stdin", input=json.dumps(reader_key_info))
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert connection.execute("SELECT count(*) FROM cloud_accounts").fetchone() == (0,)


def test_no_key_or_a_malformed_key_is_refused_by_field_name(
    make_export, reader_key_info: dict[str, Any], env: dict[str, str]
) -> None:
    export = make_export([])
    missing = finops(env, *export_args(export))
    assert missing.exit_code == 1
    assert "FINOPS_GCP_SERVICE_ACCOUNT_JSON" in missing.stderr and "--key-stdin" in missing.stderr
    broken = dict(reader_key_info)
    broken.pop("client_email")
    refused = finops(env, *export_args(export), "--key-stdin", input=json.dumps(broken))
    assert refused.exit_code == 1
    assert "client_email" in refused.stderr
    assert not _leaks(reader_key_info, refused.output)
