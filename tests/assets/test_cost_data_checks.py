"""cost_data's asset checks through real Dagster: sandbox Cost Explorer via boto3, real
Postgres, checks run after the materialisation and alone, and real damage to the rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets import COST_DATA_CHECKS, cost_data
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from finops_pipeline.db.accounts import register_account
from finops_pipeline.definitions import defs
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.sync.ranges import account_date_key
from tests.azure_sandbox import DEVELOPMENT, PRODUCTION, add_azure_subscription
from tests.resources import pipeline_resources

pytestmark = pytest.mark.integration

END = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
START = END - dt.timedelta(days=20)
NUMBERS = ("320000000001", "320000000002")


@pytest.fixture
def sandbox_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "0")
    monkeypatch.setenv("FINOPS_RECONCILE_AWS", "1")
    reset_request_counts()


def resources(database_url: str, encryption_key: str) -> dict[str, Any]:
    return pipeline_resources(database_url, encryption_key)


def add_sandbox_accounts(connection: psycopg.Connection, ring: KeyRing) -> list[str]:
    return [
        register_account(
            connection,
            ring,
            tenant_id="globex",
            name=f"sandbox {number}",
            provider="aws",
            provider_account_id=number,
            credentials=sandbox_credentials(number),
            endpoint_url=SANDBOX_ENDPOINT_URL,
        )
        for number in NUMBERS
    ]


def materialize_with_checks(
    instance: dg.DagsterInstance, database_url: str, encryption_key: str, ids: list[str]
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ids)
    return dg.materialize(
        [cost_data, *COST_DATA_CHECKS],
        instance=instance,
        resources=resources(database_url, encryption_key),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: account_date_key(ids[0], START),
            ASSET_PARTITION_RANGE_END_TAG: account_date_key(ids[-1], END),
        },
    )


def run_checks_alone(
    instance: dg.DagsterInstance, database_url: str, encryption_key: str
) -> dict[str, dg.AssetCheckEvaluation]:
    job = defs.resolve_job_def("cost_data_checks_job")
    result = job.execute_in_process(
        instance=instance, resources=resources(database_url, encryption_key)
    )
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def per_account(evaluation: dg.AssetCheckEvaluation) -> dict[str, str]:
    return dict(evaluation.metadata["per_account"].value)  # type: ignore[arg-type]


def test_checks_pass_after_a_materialisation_and_name_damaged_accounts_and_days(
    sandbox_env: None,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    ids = add_sandbox_accounts(connection, key_ring)
    result = materialize_with_checks(instance, database_url, encryption_key, ids)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert sorted(evaluations) == ["completeness", "freshness", "reconciliation", "sanity"]
    assert evaluations["reconciliation"].metadata["accounts_not_reconciled"].value == 0
    for name, evaluation in evaluations.items():
        assert evaluation.passed, (name, evaluation.description)
        assert sorted(per_account(evaluation)) == sorted(ids)
        assert evaluation.metadata["scope"].value == f"2 accounts, {START}..{END}"
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    # One ungrouped total per account and window: the reconciliation's whole price.
    assert metadata["paid_reconciliation_requests"].value == 2
    assert metadata["paid_ce_requests"].value == request_counts().paid
    stored = connection.execute(
        "SELECT count(DISTINCT (cloud_account_id, date)) FROM cost_provider_totals"
    ).fetchone()
    assert stored == (2 * ((END - START).days + 1),)

    altered, emptied = ids
    lost_day = START + dt.timedelta(days=5)
    future_day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    # Two cents more on one row; a whole day's rows deleted; a row in another currency and one
    # dated in the future.
    connection.execute(
        "UPDATE cost_data SET unblended_cost = unblended_cost + 0.02 WHERE ctid = (SELECT ctid "
        "FROM cost_data WHERE cloud_account_id = %s AND date = %s LIMIT 1)",
        (altered, START + dt.timedelta(days=2)),
    )
    lost_rows = connection.execute(
        "DELETE FROM cost_data WHERE cloud_account_id = %s AND date = %s", (emptied, lost_day)
    ).rowcount
    assert lost_rows > 0
    connection.execute(
        "INSERT INTO cost_data (tenant_id, cloud_account_id, date, provider, service, "
        "usage_type, unblended_cost, amortized_cost, net_unblended_cost, usage_quantity, "
        "currency) VALUES ('globex', %s, %s, 'aws', 'AWS Lambda', 'Request', 0, 0, 0, 0, 'EUR')",
        (altered, future_day),
    )

    alone = run_checks_alone(instance, database_url, encryption_key)
    assert alone["reconciliation"].metadata["scope"].value == "every active account, all days"
    month = (START + dt.timedelta(days=2)).strftime("%Y-%m")
    reconciliation = per_account(alone["reconciliation"])
    assert not alone["reconciliation"].passed
    assert reconciliation[altered].startswith(f"{month} USD: loaded ")
    assert reconciliation[altered].endswith("(difference +0.0200000000)")
    assert reconciliation[emptied].startswith(f"{lost_day:%Y-%m} USD: loaded ")
    assert emptied in (alone["reconciliation"].description or "")
    failures = str(alone["completeness"].metadata["failures"].value)
    assert f"| sandbox {NUMBERS[1]} (aws {NUMBERS[1]}) | {emptied} | 1 days changed" in failures

    completeness = per_account(alone["completeness"])
    assert not alone["completeness"].passed
    assert completeness[altered] == "ok"
    assert completeness[emptied] == (
        f"1 days changed since loaded: {lost_day} ({lost_rows} rows loaded, 0 now)"
    )

    sanity = per_account(alone["sanity"])
    assert not alone["sanity"].passed
    assert sanity[emptied] == "ok"
    assert "2 currencies: USD" in sanity[altered]
    assert f"rows dated in the future: {future_day}" in sanity[altered]
    assert alone["freshness"].passed


def test_freshness_fails_past_the_configured_lag_as_a_warning(
    sandbox_env: None,
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    ids = add_sandbox_accounts(connection, key_ring)
    assert materialize_with_checks(instance, database_url, encryption_key, ids).success
    latest = connection.execute(
        "SELECT max(date) FROM cost_data WHERE cloud_account_id = %s AND NOT is_estimated",
        (ids[0],),
    ).fetchone()[0]
    lag = (dt.datetime.now(dt.UTC).date() - latest).days
    monkeypatch.setenv("FINOPS_FRESHNESS_MAX_LAG_DAYS", f"aws={lag - 1}")
    freshness = run_checks_alone(instance, database_url, encryption_key)["freshness"]
    assert not freshness.passed
    assert freshness.severity == dg.AssetCheckSeverity.WARN
    assert per_account(freshness)[ids[0]] == (
        f"latest final day {latest} is {lag} days old (limit {lag - 1})"
    )


def test_without_reconciliation_no_request_is_paid_and_nothing_is_compared(
    sandbox_env: None,
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    monkeypatch.setenv("FINOPS_RECONCILE_AWS", "0")
    ids = add_sandbox_accounts(connection, key_ring)
    result = materialize_with_checks(instance, database_url, encryption_key, ids)
    assert result.success
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    assert metadata["paid_reconciliation_requests"].value == 0
    assert metadata["paid_ce_requests"].value == request_counts().paid == 2
    assert connection.execute("SELECT count(*) FROM cost_provider_totals").fetchone() == (0,)
    # Nothing compared is not a match: the check says which accounts it could not reconcile.
    reconciliation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "reconciliation"
    )
    assert reconciliation.metadata["accounts_not_reconciled"].value == 2
    assert reconciliation.metadata["not_reconciled"].value == ", ".join(sorted(ids))


def test_the_asset_carries_a_freshness_policy_and_the_job_runs_its_checks() -> None:
    spec = defs.resolve_assets_def("cost_data").specs_by_key[dg.AssetKey("cost_data")]
    assert isinstance(spec.freshness_policy, dg.FreshnessPolicy)
    job = defs.resolve_job_def("cost_data_job")
    check_keys = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert {"reconciliation", "freshness", "completeness", "sanity"} <= check_keys


def test_azure_subscriptions_reconcile_with_one_ungrouped_query_and_fail_on_an_altered_row(
    sandbox_env: None,
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    ids = [
        add_azure_subscription(connection, key_ring, subscription)
        for subscription in (PRODUCTION, DEVELOPMENT)
    ]
    result = materialize_with_checks(instance, database_url, encryption_key, ids)
    assert result.success
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    # START..END spans two query windows' worth of months at most: per window, ActualCost and
    # AmortizedCost grouped, plus one ungrouped ActualCost total; none is billed.
    windows = 1 if START.month == END.month else 2
    assert metadata["azure_requests"].value == 2 * 3 * windows
    assert metadata["azure_qpu_consumed"].value == 2 * 3 * windows
    assert metadata["paid_reconciliation_requests"].value == 0
    reconciliation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "reconciliation"
    )
    assert reconciliation.passed, reconciliation.description
    assert reconciliation.metadata["accounts_not_reconciled"].value == 0
    assert sorted(per_account(reconciliation)) == sorted(ids)

    altered = ids[0]
    day = START + dt.timedelta(days=2)
    connection.execute(
        "UPDATE cost_data SET unblended_cost = unblended_cost + 0.02 WHERE ctid = (SELECT ctid "
        "FROM cost_data WHERE cloud_account_id = %s AND date = %s LIMIT 1)",
        (altered, day),
    )
    failed = run_checks_alone(instance, database_url, encryption_key)["reconciliation"]
    assert not failed.passed
    problems = per_account(failed)
    assert problems[ids[1]] == "ok"
    assert problems[altered].startswith(f"{day:%Y-%m} {PRODUCTION.currency}: loaded ")
    assert "(difference +0.02" in problems[altered]


def test_azure_reconciliation_switched_off_queries_nothing_more(
    sandbox_env: None,
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
) -> None:
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    monkeypatch.setenv("FINOPS_RECONCILE_AZURE", "0")
    ids = [add_azure_subscription(connection, key_ring, PRODUCTION)]
    result = materialize_with_checks(instance, database_url, encryption_key, ids)
    assert result.success
    metadata = result.asset_materializations_for_node("cost_data")[0].metadata
    windows = 1 if START.month == END.month else 2
    assert metadata["azure_requests"].value == 2 * windows
    assert connection.execute("SELECT count(*) FROM cost_provider_totals").fetchone() == (0,)
    reconciliation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "reconciliation"
    )
    assert reconciliation.metadata["not_reconciled"].value == ids[0]
