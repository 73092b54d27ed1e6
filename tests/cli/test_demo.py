"""`finops demo` end to end at a small size: real Postgres, real Dagster, the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
import yaml
from click.testing import CliRunner

from finops_pipeline.cli.commands import main
from finops_pipeline.db.urls import to_libpq_url
from finops_pipeline.providers.aws.sandbox.catalogue import DEMO_TENANTS
from finops_pipeline.providers.azure.sandbox import DEFAULT_TENANTS as AZURE_TENANTS
from finops_pipeline.providers.gcp.sandbox.demo import DEMO_GCP_TENANT
from finops_pipeline.providers.gcp.sandbox.hook import DEMO_EXPORT

pytestmark = pytest.mark.integration

DAYS = 6


def run_demo(runner: CliRunner) -> str:
    result = runner.invoke(main, ["demo", "--days", str(DAYS)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def statistic(output: str, pattern: str) -> int:
    match = re.search(pattern, output)
    assert match, output
    return int(match.group(1).replace(",", ""))


def snapshot(database_url: str) -> dict[tuple[str, str, str, str], tuple[str, bool]]:
    with psycopg.connect(to_libpq_url(database_url)) as connection:
        rows = connection.execute(
            "SELECT cloud_account_id::text, date::text, service, usage_type, "
            "unblended_cost::text, is_estimated FROM cost_data"
        ).fetchall()
    return {(a, d, s, u): (cost, estimated) for a, d, s, u, cost, estimated in rows}


def test_demo_loads_and_a_rerun_restates_without_duplicating(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("GENERATION", "AS_OF", "PAGE_SIZE", "THROTTLE_RATE", "LATENCY_MS"):
        monkeypatch.delenv(f"FINOPS_SANDBOX_{name}", raising=False)
    runner = CliRunner()

    first = run_demo(runner)
    # Our own lines come first; Dagster's telemetry banner never shows (the instance the demo
    # creates states that telemetry is off).
    assert first.startswith("Database: ")
    assert "Telemetry" not in first and "usage statistics" not in first
    instance_config = yaml.safe_load((tmp_path / "dagster" / "dagster.yaml").read_text())
    assert instance_config == {"telemetry": {"enabled": False}, "nux": {"enabled": False}}
    # The closing lines say where to look next.
    assert re.search(r"\n  \S*finops costs --tenant acme-retail +a tenant's costs", first)
    assert re.search(r"\n  \S*finops ui +the Dagster UI", first)
    rows = statistic(first, r"rows in cost_data\s+([\d,]+)")
    assert rows > 0
    assert statistic(first, r"rows this run\s+([\d,]+) new") == rows
    assert statistic(first, r"paid CE requests\s+(\d+)") >= 4
    for tenant in DEMO_TENANTS:
        assert tenant.tenant_id in first
        assert re.search(rf"\n  {tenant.tenant_id} +\d+ of 2000 requests in ", first)
        # Recommendations, anomalies and a chart for every tenant.
        assert re.search(
            rf"\n  {tenant.tenant_id} +\d+ open recommendations? \([\d,.]+ USD/month\); "
            rf"\d+ anomal(y|ies) in \S+ to \S+; chart \d+ KB",
            first,
        ), first
    # The registered AWS accounts and the payer's discovered members.
    accounts_total = sum(
        len(t.accounts) + sum(len(a.linked) for a in t.accounts) for t in DEMO_TENANTS
    )
    # Two paid requests per account: rightsizing and Savings Plans, one page each.
    assert statistic(first, r"recommendations refreshed for \d+ accounts \((\d+) paid") == (
        2 * accounts_total
    )
    assert re.search(r"\n  \S*finops recommendations --tenant acme-retail ", first)
    # The GCP tenant's projects get GCP Recommender's cost recommendations, free, asked where
    # the export shows each project's usage: 18 lists for the two projects with VMs in
    # us-central1's four zones, 6 for the one without (4 regional, 2 global), a few with a
    # second page.
    assert len(DEMO_EXPORT.projects) == 3
    assert statistic(first, r"(\d+) GCP Recommender requests not billed") >= 18 + 18 + 6
    # Finding where they run: one location query per project, each BigQuery's 10 MiB minimum.
    assert "30 MiB BigQuery billed finding where the GCP projects run" in first
    assert statistic(first, rf"\n  {DEMO_GCP_TENANT} +(\d+) open recommendations") > 0
    # One Azure tenant's subscriptions next to the AWS ones, from the Azure sandbox.
    assert "fabrikam" in first
    # Azure Advisor's recommendations for its subscriptions (USD and EUR), not billed.
    assert re.search(
        r"\n  fabrikam +\d+ open recommendations \([\d,.]+ EUR/month, [\d,.]+ USD/month\); ",
        first,
    ), first
    azure_readers = sum(s.reader for s in AZURE_TENANTS[0].subscriptions)
    assert statistic(first, r"paid requests, (\d+) Azure Advisor requests not billed") >= (
        azure_readers
    )
    assert statistic(first, r"Azure queries\s+(\d+) requests") >= 6
    azure_subscriptions = sum(s.reader for s in AZURE_TENANTS[0].subscriptions)
    aws_accounts = sum(
        len(t.accounts) + sum(len(a.linked) for a in t.accounts) for t in DEMO_TENANTS
    )
    checked = aws_accounts + azure_subscriptions + len(DEMO_EXPORT.projects)
    for check in ("reconciliation", "freshness", "completeness", "sanity"):
        assert re.search(rf"\n  ok +{check} +{check}: all {checked} accounts pass", first), first
    assert re.search(r"organisation +payer acme payer \d{12}: 2 added, .*; 1 paid requests", first)
    assert f"local key file {tmp_path / 'encryption.key'}" in first
    before = snapshot(database_url)
    assert len(before) == rows

    second = run_demo(runner)
    assert statistic(second, r"rows in cost_data\s+([\d,]+)") == rows
    assert statistic(second, r"rows this run\s+([\d,]+) new") == 0
    restated = statistic(second, r"rows this run\s+[\d,]+ new, ([\d,]+) restated")
    assert restated > 0
    after = snapshot(database_url)
    assert after.keys() == before.keys()
    changed = [key for key in before if before[key] != after[key]]
    assert len(changed) == restated
    # Only the still-settling (Estimated) days changed; older days are final.
    assert all(before[key][1] for key in changed)
    assert any(not estimated for _, estimated in before.values())
    with psycopg.connect(to_libpq_url(database_url)) as connection:
        accounts = connection.execute("SELECT count(*) FROM cloud_accounts").fetchone()
        secrets = connection.execute(
            "SELECT count(*) FROM cloud_accounts WHERE position('SBXK'::bytea in "
            "credentials_encrypted) > 0 OR position('sbx~'::bytea in credentials_encrypted) > 0"
        ).fetchone()
        gcp_keys = connection.execute(
            "SELECT count(*) FROM cloud_accounts WHERE provider = 'gcp' AND "
            "position('PRIVATE KEY'::bytea in credentials_encrypted) = 0"
        ).fetchone()
    # The registered accounts, the payer's discovered members, the Azure subscriptions and the
    # GCP export's projects.
    assert accounts == (checked,)
    assert secrets == (0,)  # the access key ids and the Azure client secret are encrypted too
    assert gcp_keys == (len(DEMO_EXPORT.projects),)  # so are the service-account keys


def test_demo_collects_the_gcp_export_s_projects_in_one_query(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    output = run_demo(CliRunner())
    assert DEMO_GCP_TENANT in output
    assert re.search(r"3 GCP projects +billing export .* ok", output), output
    assert statistic(output, r"BigQuery bytes\s+([\d,]+) billed") >= 10 * 1024 * 1024
    assert statistic(output, r"in (\d+) queries") == 1
    with psycopg.connect(to_libpq_url(database_url)) as connection:
        per_project = connection.execute(
            "SELECT count(DISTINCT cloud_account_id), count(DISTINCT date) FROM cost_data "
            "WHERE provider = 'gcp'"
        ).fetchone()
    assert per_project == (len(DEMO_EXPORT.projects), DAYS)


def test_demo_refuses_more_days_than_daily_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["demo", "--days", "500"])
    assert result.exit_code == 1
    assert "--days must be between 1 and" in result.output
    assert not (tmp_path / "pgdata").exists()


def test_ui_uses_the_demo_instance_and_a_workspace_that_works_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finops_pipeline.cli.demo import ensure_instance_config, ui_environment, ui_workspace

    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    env = ui_environment()
    home = Path(env["DAGSTER_HOME"])
    assert home == tmp_path / "dagster"
    assert "ENCRYPTION_KEY" not in env  # runs read the local key file themselves
    ensure_instance_config(home)
    assert (home / "dagster.yaml").exists()
    workspace = yaml.safe_load(ui_workspace(home).read_text())
    assert workspace == {
        "load_from": [
            {
                "python_module": {
                    "module_name": "finops_pipeline.definitions",
                    "attribute": "defs",
                    "location_name": "finops_pipeline",
                }
            }
        ]
    }


def test_instance_config_states_telemetry_and_the_dialog_and_leaves_a_users_file_alone(
    tmp_path: Path,
) -> None:
    from finops_pipeline.cli.instance_config import INSTANCE_CONFIG_HEADER, write_instance_config

    stated = {"telemetry": {"enabled": False}, "nux": {"enabled": False}}
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    text = write_instance_config(fresh).read_text()
    assert yaml.safe_load(text) == stated
    assert "https://docs.dagster.io/about/telemetry" in text
    assert "Join the Dagster community" in text
    assert write_instance_config(fresh).read_text() == text  # idempotent

    # Files older releases wrote (our header, without one setting or both) get what they lack,
    # and a setting a person changed in them stays as they left it.
    older = tmp_path / "older"
    older.mkdir()
    (older / "dagster.yaml").write_text(f"{INSTANCE_CONFIG_HEADER}\n# Runs ... folder.\n")
    assert yaml.safe_load(write_instance_config(older).read_text()) == stated
    telemetry_only = tmp_path / "telemetry-only"
    telemetry_only.mkdir()
    (telemetry_only / "dagster.yaml").write_text(
        f"{INSTANCE_CONFIG_HEADER}\ntelemetry:\n  enabled: true\n"
    )
    assert yaml.safe_load(write_instance_config(telemetry_only).read_text()) == {
        "telemetry": {"enabled": True},
        "nux": {"enabled": False},
    }

    # The user's own file is theirs.
    users = tmp_path / "users"
    users.mkdir()
    own = "run_coordinator:\n  module: dagster.core.run_coordinator\n"
    (users / "dagster.yaml").write_text(own)
    assert write_instance_config(users).read_text() == own
