"""cost_recommendations through real Dagster runs, the real boto3 client and the sandbox."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets.recommendations import (
    PAID_REQUESTS_BY_ACCOUNT_KEY,
    PAID_REQUESTS_KEY,
)
from finops_pipeline.constants import ACCOUNTS_PARTITIONS_NAME
from finops_pipeline.db.accounts import register_account
from finops_pipeline.insights_schedules import (
    RECOMMENDATIONS_JOB_NAME,
    weekly_recommendations_refresh,
)
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.sandbox.hook import ENV_AS_OF
from finops_pipeline.resources import (
    PostgresResource,
)
from finops_pipeline.security.ciphertext import KeyRing
from finops_pipeline.security.credentials import Secret
from tests.resources import pipeline_resources, refresh_recommendations

pytestmark = pytest.mark.integration

PRODUCTION, STAGING = "320000000001", "320000000002"
WEEK_1, WEEK_2 = dt.date(2026, 6, 1), dt.date(2026, 6, 8)


def add(connection: psycopg.Connection, ring: KeyRing, number: str, *, broken: bool = False) -> str:
    credentials = sandbox_credentials(number)
    if broken:
        # The account's key id with another secret: the sandbox refuses the signature, as AWS.
        credentials = AwsAccessKeyCredentials(
            access_key_id=credentials.access_key_id, secret_access_key=Secret("x" * 40)
        )
    return register_account(
        connection,
        ring,
        tenant_id="globex",
        name=f"globex {number}",
        provider="aws",
        provider_account_id=number,
        credentials=credentials,
        endpoint_url=SANDBOX_ENDPOINT_URL,
    )


def refresh(
    database_url: str,
    encryption_key: str,
    instance: dg.DagsterInstance,
    accounts: list[str],
    monkeypatch: pytest.MonkeyPatch,
    as_of: dt.date,
) -> dg.ExecuteInProcessResult:
    """One single-run range over ``accounts``, as a backfill of several partitions runs."""
    monkeypatch.setenv(ENV_AS_OF, as_of.isoformat())
    return refresh_recommendations(database_url, encryption_key, instance, accounts)


def open_and_resolved(connection: psycopg.Connection, account: str) -> tuple[set[str], set[str]]:
    rows = connection.execute(
        "SELECT resource, resolved_at IS NULL FROM cost_recommendations "
        "WHERE cloud_account_id = %s",
        (account,),
    ).fetchall()
    return {r for r, is_open in rows if is_open}, {r for r, is_open in rows if not is_open}


def test_weekly_refresh_replaces_and_resolves_with_two_paid_requests_per_account(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production, staging = add(connection, key_ring, PRODUCTION), add(connection, key_ring, STAGING)
    reset_request_counts()
    first = refresh(
        database_url, encryption_key, instance, [production, staging], monkeypatch, WEEK_1
    )
    assert first.success
    metadata = first.asset_materializations_for_node("cost_recommendations")[0].metadata
    # One GetRightsizingRecommendation and one GetSavingsPlansPurchaseRecommendation each.
    assert metadata[PAID_REQUESTS_KEY].value == 4
    assert metadata[PAID_REQUESTS_BY_ACCOUNT_KEY].value == {production: 2, staging: 2}
    assert request_counts().by_account == {PRODUCTION: 2, STAGING: 2}
    largest = [row.data for row in metadata["largest"].value.records]  # type: ignore[attr-defined]
    savings = [float(row["monthly_savings"]) for row in largest]
    assert len(largest) == 10 and savings == sorted(savings, reverse=True)
    week_1_open, resolved = open_and_resolved(connection, production)
    assert resolved == set() and len(week_1_open) == metadata["recommendations_new"].value - len(
        open_and_resolved(connection, staging)[0]
    )
    kinds = dict(
        connection.execute(
            "SELECT kind, count(*) FROM cost_recommendations GROUP BY kind"
        ).fetchall()
    )
    assert set(kinds) == {"rightsize", "terminate", "commitment_purchase"}
    raw = connection.execute(
        "SELECT raw -> 'CurrentInstance' ->> 'ResourceId' = resource FROM cost_recommendations "
        "WHERE source = 'rightsizing' LIMIT 1"
    ).fetchone()
    assert raw == (True,)  # the provider's payload is kept beside the normalised columns

    second = refresh(
        database_url, encryption_key, instance, [production, staging], monkeypatch, WEEK_2
    )
    assert second.success
    week_2_open, resolved = open_and_resolved(connection, production)
    # The sandbox's fleet changed in a week: some recommendations went, others came.
    assert resolved == week_1_open - week_2_open and resolved
    assert week_2_open - week_1_open
    first_seen = connection.execute(
        "SELECT count(DISTINCT first_seen) FROM cost_recommendations WHERE cloud_account_id = %s",
        (production,),
    ).fetchone()
    assert first_seen == (2,)  # kept for those still open, new for the new ones
    totals = second.asset_materializations_for_node("cost_recommendations")[0].metadata
    assert totals["recommendations_resolved"].value >= len(resolved)
    assert totals["dagster/row_count"].value == len(week_2_open) + len(
        open_and_resolved(connection, staging)[0]
    )


def test_a_provider_error_is_isolated_to_its_account(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    healthy = add(connection, key_ring, PRODUCTION)
    broken = add(connection, key_ring, STAGING, broken=True)
    result = refresh(database_url, encryption_key, instance, [healthy, broken], monkeypatch, WEEK_1)

    assert not result.success
    failure = next(
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert f"{broken}: ProviderAccessDeniedError" in description
    assert healthy not in description
    # The healthy account's recommendations are stored; the broken one has none, no traceback.
    counts = dict(
        connection.execute(
            "SELECT cloud_account_id::text, count(*) FROM cost_recommendations GROUP BY 1"
        ).fetchall()
    )
    assert set(counts) == {healthy} and counts[healthy] > 0
    assert "Traceback" not in description and "x" * 40 not in description


def test_the_weekly_schedule_requests_one_run_per_active_account(
    database_url: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
) -> None:
    production, staging = add(connection, key_ring, PRODUCTION), add(connection, key_ring, STAGING)
    connection.execute("UPDATE cloud_accounts SET status = 'disabled' WHERE id = %s", (staging,))
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [production, staging])
    monday = dt.datetime(2026, 6, 8, 5, tzinfo=dt.UTC)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=monday,
        resources={"postgres": PostgresResource(database_url=database_url)},
    ) as context:
        requests = weekly_recommendations_refresh(context)
    assert isinstance(requests, list)
    assert [(r.partition_key, r.run_key, r.job_name) for r in requests] == [
        (production, f"recommendations:{production}:2026-W24", RECOMMENDATIONS_JOB_NAME)
    ]


def test_provider_anomalies_are_stored_beside_ours_marked_by_source(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
) -> None:
    """AWS Cost Anomaly Detection (GetAnomalies) through the sandbox, one paid request."""
    import pandas as pd

    from finops_pipeline.assets.anomalies import provider_cost_anomalies
    from finops_pipeline.db.anomalies import AccountScope, replace_anomalies
    from finops_pipeline.providers.aws.anomalies import AWS_ANOMALY_SOURCE
    from finops_pipeline.providers.aws.sandbox.generator import SandboxGenerator

    account = add(connection, key_ring, PRODUCTION)
    today = dt.datetime.now(dt.UTC).date()
    ours = pd.DataFrame(
        [("AWS Lambda", "USD", today - dt.timedelta(days=3), 1.0, 90.0, 89.0, 9.0, "spike", False)],
        columns=[
            "service",
            "currency",
            "date",
            "expected",
            "actual",
            "impact",
            "score",
            "direction",
            "confirmed",
        ],
    )
    replace_anomalies(
        connection, AccountScope(account, "globex"), ours, start=ours["date"][0], end=today
    )
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, [account])
    reset_request_counts()
    resources = pipeline_resources(database_url, encryption_key)
    for _ in range(2):  # a re-run replaces, never duplicates
        result = dg.materialize(
            [provider_cost_anomalies],
            partition_key=account,
            instance=instance,
            resources=resources,
        )
        assert result.success
    metadata = result.asset_materializations_for_node("provider_cost_anomalies")[0].metadata
    assert metadata[PAID_REQUESTS_KEY].value == 1
    assert request_counts().by_account == {PRODUCTION: 2}

    injected = {
        (spike.service, spike.start)
        for spike in SandboxGenerator().injected_anomalies(PRODUCTION)
        if today - dt.timedelta(days=89) <= spike.start < today
    }
    stored = connection.execute(
        "SELECT service, date, source FROM cost_anomalies ORDER BY date"
    ).fetchall()
    assert injected  # the demo accounts have an incident every few weeks
    assert {(s, d) for s, d, source in stored if source == AWS_ANOMALY_SOURCE} == injected
    assert ("AWS Lambda", ours["date"][0], "finops_detector") in stored  # ours untouched
    assert metadata["dagster/row_count"].value == len(injected)
