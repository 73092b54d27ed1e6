"""cost_recommendations for Azure subscriptions: real Dagster runs, the real Advisor and
identity clients, the Azure sandbox behind the registry's transport hook, real Postgres."""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets.recommendations import (
    PAID_REQUESTS_BY_ACCOUNT_KEY,
    PAID_REQUESTS_KEY,
)
from finops_pipeline.db.request_budget import (
    UNIT_QPU,
    UNIT_REQUEST,
    account_requests,
    record_requests,
    set_budget,
)
from finops_pipeline.providers.aws.sandbox.hook import ENV_AS_OF, ENV_GENERATION
from finops_pipeline.providers.azure.sandbox import sandbox_credentials
from finops_pipeline.providers.azure.sandbox.hook import shared_sandbox
from finops_pipeline.security.ciphertext import KeyRing
from tests.azure_sandbox import (
    AZURE_TENANT,
    EUROPE,
    NO_READER,
    PRODUCTION,
    add_azure_subscription,
)
from tests.resources import refresh_recommendations

pytestmark = pytest.mark.integration

MONDAY = dt.date(2026, 6, 1)
SECRET = sandbox_credentials(AZURE_TENANT).client_secret.reveal()


def refresh(
    database_url: str,
    encryption_key: str,
    instance: dg.DagsterInstance,
    accounts: list[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    as_of: dt.date = MONDAY,
    generation: int = 0,
) -> dg.ExecuteInProcessResult:
    monkeypatch.setenv(ENV_AS_OF, as_of.isoformat())
    monkeypatch.setenv(ENV_GENERATION, str(generation))
    return refresh_recommendations(database_url, encryption_key, instance, accounts)


def stored(connection: psycopg.Connection, account: str) -> dict[str, tuple[str, bool]]:
    rows = connection.execute(
        "SELECT resource, kind, resolved_at IS NULL FROM cost_recommendations "
        "WHERE cloud_account_id = %s AND provider = 'azure' AND source = 'advisor'",
        (account,),
    ).fetchall()
    return {resource: (kind, is_open) for resource, kind, is_open in rows}


def names(connection: psycopg.Connection, account: str) -> dict[str, str]:
    """Each stored recommendation's Advisor name (a GUID), by its stable resource id."""
    rows = connection.execute(
        "SELECT resource, raw ->> 'name' FROM cost_recommendations WHERE cloud_account_id = %s",
        (account,),
    ).fetchall()
    return dict(rows)


def test_a_weekly_refresh_stores_replaces_and_resolves_advisor_recommendations(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production = add_azure_subscription(connection, key_ring, PRODUCTION)
    europe = add_azure_subscription(connection, key_ring, EUROPE)
    monkeypatch.setenv(ENV_AS_OF, MONDAY.isoformat())
    sandbox = shared_sandbox()  # the one the run's clients will reach, for these settings
    pages_before = sandbox.counts.advisor_pages

    first = refresh(database_url, encryption_key, instance, [production, europe], monkeypatch)
    assert first.success
    metadata = first.asset_materializations_for_node("cost_recommendations")[0].metadata
    # Advisor is not billed: no paid requests, every request counted apart.
    assert metadata[PAID_REQUESTS_KEY].value == 0
    assert metadata[PAID_REQUESTS_BY_ACCOUNT_KEY].value == {production: 0, europe: 0}
    pages = sandbox.counts.advisor_pages - pages_before
    assert metadata["azure_requests"].value == pages >= 2
    assert metadata["accounts_refreshed"].value == 2
    week_1 = stored(connection, production)
    assert {kind for kind, _ in week_1.values()} == {
        "rightsize",
        "terminate",
        "commitment_purchase",
        "advisor_cost",
    }
    assert all(is_open for _, is_open in week_1.values())
    currencies = dict(
        connection.execute(
            "SELECT cloud_account_id::text, array_agg(DISTINCT currency) "
            "FROM cost_recommendations GROUP BY 1"
        ).fetchall()
    )
    assert currencies == {production: ["USD"], europe: ["EUR"]}
    assert metadata["open_monthly_savings_EUR"].value and metadata["open_monthly_savings_USD"]
    type_ids = connection.execute(
        "SELECT DISTINCT raw -> 'properties' ->> 'recommendationTypeId' "
        "FROM cost_recommendations WHERE kind = 'rightsize'"
    ).fetchall()
    assert type_ids == [("e10b1381-5f0a-47ff-8c7b-37bd13d7c974",)]  # the payload is kept
    names_1 = names(connection, production)

    # The same week re-pulled (the next generation): names change, identities do not, and the
    # one recommendation that flickers between generations is resolved.
    second = refresh(
        database_url, encryption_key, instance, [production, europe], monkeypatch, generation=1
    )
    assert second.success
    totals = second.asset_materializations_for_node("cost_recommendations")[0].metadata
    assert totals["recommendations_new"].value == 0
    assert totals["recommendations_resolved"].value >= 1
    again = stored(connection, production)
    assert again.keys() == week_1.keys()
    names_2 = names(connection, production)
    still = [r for r, (_, is_open) in again.items() if is_open]
    assert still and all(names_1[r] != names_2[r] for r in still)

    # A week later the fleet changed: some recommendations went, others came.
    third = refresh(
        database_url,
        encryption_key,
        instance,
        [production, europe],
        monkeypatch,
        as_of=MONDAY + dt.timedelta(days=7),
    )
    assert third.success
    week_2 = stored(connection, production)
    open_1 = {r for r, (_, is_open) in week_1.items() if is_open}
    open_2 = {r for r, (_, is_open) in week_2.items() if is_open}
    assert open_1 - open_2 and open_2 - open_1
    assert {r for r, (_, is_open) in week_2.items() if not is_open} == open_1 - open_2


def test_an_advisor_error_fails_only_its_subscription(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    healthy = add_azure_subscription(connection, key_ring, PRODUCTION)
    denied = add_azure_subscription(connection, key_ring, NO_READER)
    result = refresh(database_url, encryption_key, instance, [healthy, denied], monkeypatch)

    assert not result.success
    failure = next(
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    data = failure.step_failure_data.user_failure_data  # type: ignore[union-attr]
    assert data is not None and data.description is not None
    assert f"{denied}: AzureAccessDeniedError" in data.description
    assert "the Reader role on /subscriptions/" in data.description
    assert healthy not in data.description.split("\n", 1)[1]
    assert data.metadata["accounts_refreshed"].value == 1
    counts = dict(
        connection.execute(
            "SELECT cloud_account_id::text, count(*) FROM cost_recommendations GROUP BY 1"
        ).fetchall()
    )
    assert set(counts) == {healthy} and counts[healthy] > 0
    assert "Traceback" not in data.description


def test_a_spent_qpu_budget_does_not_block_advisor_and_nothing_is_charged(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production = add_azure_subscription(connection, key_ring, PRODUCTION)
    # The tenant's QPU budget is spent by its cost queries, and its request budget too.
    set_budget(connection, "contoso", 10, unit=UNIT_QPU)
    set_budget(connection, "contoso", 0, unit=UNIT_REQUEST)
    record_requests(connection, "contoso", production, "azure", 10, unit=UNIT_QPU)

    result = refresh(database_url, encryption_key, instance, [production], monkeypatch)
    assert result.success
    assert stored(connection, production)
    assert account_requests(connection, unit=UNIT_QPU) == {production: 10}  # unchanged
    assert account_requests(connection, unit=UNIT_REQUEST) == {}


def test_no_client_secret_or_token_reaches_logs_metadata_or_errors(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    healthy = add_azure_subscription(connection, key_ring, PRODUCTION)
    denied = add_azure_subscription(connection, key_ring, NO_READER)
    monkeypatch.setenv(ENV_AS_OF, MONDAY.isoformat())
    sandbox = shared_sandbox()
    with caplog.at_level(logging.DEBUG):
        result = refresh(database_url, encryption_key, instance, [healthy, denied], monkeypatch)
    assert not result.success
    texts = [caplog.text]
    for event in instance.all_logs(result.run_id):
        texts.append(event.user_message or "")
        texts.append(repr(event.dagster_event) if event.dagster_event else "")
    tokens = list(sandbox.issued_tokens)
    assert tokens  # the clients did sign in
    everything = "\n".join(texts)
    assert "AzureAccessDeniedError" in everything  # the error text was produced and scanned
    assert SECRET not in everything
    assert not any(token in everything for token in tokens)
    rows = connection.execute("SELECT raw::text FROM cost_recommendations").fetchall()
    assert rows and not any(SECRET in row[0] for row in rows)
