"""cost_recommendations for GCP projects: real Dagster runs, real Postgres, the real
RecommenderClient over REST and the real BigQuery client against the sandbox.

The projects are two of the sandbox billing export's: umbrella-web-prod runs VMs and disks in
``us-central1``'s zones a, b, c and f; umbrella-data-lake has only regional usage there."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest

from finops_pipeline.assets.recommendations import (
    PAID_REQUESTS_BY_ACCOUNT_KEY,
    PAID_REQUESTS_KEY,
)
from finops_pipeline.db.accounts import register_account
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.sandbox.hook import (
    DEMO_EXPORT,
    SANDBOX_API_ENDPOINT,
    SANDBOX_TOKEN_ENDPOINT,
    process_sandbox,
)
from finops_pipeline.providers.gcp.sandbox.server import BigQuerySandbox
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey
from finops_pipeline.resources import GcpBillingExportResource
from finops_pipeline.security.ciphertext import KeyRing
from tests.resources import refresh_recommendations

pytestmark = pytest.mark.integration

READER = "finops-recommendations@ops-host-9.iam.gserviceaccount.com"
WEB, LAKE = "umbrella-web-prod", "umbrella-data-lake"
#: A project with Recommender access but no rows in the sandbox export.
NEW = "umbrella-new-app"
MIB = 1024 * 1024


@pytest.fixture
def sandbox() -> Iterator[BigQuerySandbox]:
    sandbox = process_sandbox()
    sandbox.generation = 0
    yield sandbox
    sandbox.generation = None
    for project in (WEB, LAKE, NEW):
        sandbox.enable_recommender_api(project)


@pytest.fixture
def key_info(sandbox: BigQuerySandbox) -> dict[str, Any]:
    return sandbox.create_service_account(
        READER, project_id="ops-host-9", recommender_projects=[WEB, LAKE]
    )


def add(
    connection: psycopg.Connection,
    ring: KeyRing,
    project: str,
    key_info: dict[str, Any],
    *,
    table: str = DEMO_EXPORT.table_name,
) -> str:
    credentials = GcpServiceAccountCredentials(
        key=ServiceAccountKey.from_json(json.dumps(key_info)),
        table=table,
        location="US",
        api_endpoint=SANDBOX_API_ENDPOINT,
        token_endpoint=SANDBOX_TOKEN_ENDPOINT,
    )
    return register_account(
        connection,
        ring,
        tenant_id="acme",
        name=project,
        provider="gcp",
        provider_account_id=project,
        credentials=credentials,
        endpoint_url=SANDBOX_API_ENDPOINT,
    )


def refresh(
    database_url: str,
    encryption_key: str,
    instance: dg.DagsterInstance,
    accounts: list[str],
    *,
    locations: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    overrides = (
        {"gcp_billing_export": GcpBillingExportResource(recommender_locations=locations)}
        if locations
        else None
    )
    return refresh_recommendations(database_url, encryption_key, instance, accounts, overrides)


def stored(connection: psycopg.Connection, account: str) -> tuple[set[str], set[str]]:
    rows = connection.execute(
        "SELECT resource, resolved_at IS NULL FROM cost_recommendations "
        "WHERE cloud_account_id = %s AND provider = 'gcp'",
        (account,),
    ).fetchall()
    return {r for r, is_open in rows if is_open}, {r for r, is_open in rows if not is_open}


def requests_used(connection: psycopg.Connection) -> int:
    row = connection.execute(
        "SELECT coalesce(sum(requests), 0) FROM paid_request_usage WHERE tenant_id = 'acme'"
    ).fetchone()
    return int(row[0]) if row else 0


def test_gcp_projects_refresh_store_and_resolve_with_free_counted_requests(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    sandbox: BigQuerySandbox,
    key_info: dict[str, Any],
) -> None:
    web, lake = add(connection, key_ring, WEB, key_info), add(connection, key_ring, LAKE, key_info)
    # A spent budget: a metered refresh would be refused before calling the provider.
    connection.execute(
        "INSERT INTO tenant_request_budgets (tenant_id, unit, monthly_limit) "
        "VALUES ('acme', 'request', 0)"
    )
    first = refresh(database_url, encryption_key, instance, [web, lake])
    assert first.success
    metadata = first.asset_materializations_for_node("cost_recommendations")[0].metadata
    assert metadata[PAID_REQUESTS_KEY].value == 0
    assert metadata[PAID_REQUESTS_BY_ACCOUNT_KEY].value == {web: 0, lake: 0}
    # Where each project runs, from the export: one location query per project, each billed
    # BigQuery's 10 MiB minimum.
    assert metadata["gcp_queries"].value == 2
    assert metadata["gcp_bytes_billed"].value == 2 * 10 * MIB
    assert 0 < metadata["gcp_bytes_processed"].value < 10 * MIB
    # The web project's 3 zonal recommenders x 4 zones + 4 regional + 2 global lists; the
    # lake's 4 regional + 2 global. Second pages come on top.
    assert metadata["gcp_requests"].value >= 18 + 6
    week_1, resolved = stored(connection, web)
    assert resolved == set() and week_1
    # Where each was asked shows in the materialisation, per account.
    assert metadata["gcp_asked_where"].value == {
        web: "us-central1-a, us-central1-b, us-central1-c, us-central1-f, us-central1 and global",
        lake: "us-central1 and global",
    }
    lake_open = stored(connection, lake)[0]
    # No VM or disk of the lake's was asked about: it has none in its export.
    assert lake_open and not any("/zones/" in resource for resource in lake_open)
    assert any("/zones/us-central1-f/" in resource for resource in week_1)
    kinds = dict(
        connection.execute(
            "SELECT kind, count(*) FROM cost_recommendations WHERE provider = 'gcp' GROUP BY kind"
        ).fetchall()
    )
    assert set(kinds) == {"rightsize", "terminate", "commitment_purchase"}
    row = connection.execute(
        "SELECT source, monthly_savings::text, currency, raw -> 'stateInfo' ->> 'state' "
        "FROM cost_recommendations WHERE cloud_account_id = %s AND resource = %s",
        (web, f"//compute.googleapis.com/projects/{WEB}/zones/us-central1-a/instances/prod-app-1"),
    ).fetchone()
    assert row == ("compute_instance_machine_type", "141.768", "USD", "ACTIVE")
    # Recommender is free: the tenant's request budget is not charged, not even reserved.
    assert requests_used(connection) == 0

    sandbox.generation = 1
    second = refresh(database_url, encryption_key, instance, [web, lake])
    assert second.success
    week_2, resolved = stored(connection, web)
    # The idle VM was stopped: its recommendation is resolved, the rest stay open.
    assert resolved == week_1 - week_2 and len(resolved) == 1
    assert next(iter(resolved)).endswith("/zones/us-central1-c/instances/prod-batch-7")
    totals = second.asset_materializations_for_node("cost_recommendations")[0].metadata
    assert totals["recommendations_resolved"].value == 1  # the lake has no VM to stop
    assert totals["recommendations_new"].value == 0
    assert requests_used(connection) == 0


def test_an_api_not_enabled_fails_only_its_project(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    sandbox: BigQuerySandbox,
    key_info: dict[str, Any],
) -> None:
    web, lake = add(connection, key_ring, WEB, key_info), add(connection, key_ring, LAKE, key_info)
    sandbox.disable_recommender_api(LAKE)
    result = refresh(database_url, encryption_key, instance, [web, lake])

    assert not result.success
    failure = next(
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert f"{lake}: RecommenderApiDisabledError" in description
    assert "gcloud services enable recommender.googleapis.com" in description
    assert web not in description and "Traceback" not in description
    assert stored(connection, web)[0] and stored(connection, lake) == (set(), set())
    # The service-account key appears nowhere a person or a log sees.
    secrets = [key_info["private_key"], key_info["private_key_id"]] + [
        line for line in key_info["private_key"].splitlines() if line and "-----" not in line
    ]
    logs = "\n".join(
        str(event.message) for event in instance.all_logs(result.run_id) if event.message
    )
    metadata = json.dumps(
        {
            key: str(value.value)
            for key, value in failure.step_failure_data.user_failure_data.metadata.items()  # type: ignore[union-attr]
        }
    )
    for text in (description, logs, metadata):
        assert not any(secret in text for secret in secrets)


def test_fixed_locations_replace_the_discovery_and_a_project_without_usage_gets_global_lists(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    sandbox: BigQuerySandbox,
) -> None:
    key_info = sandbox.create_service_account(
        READER, project_id="ops-host-9", recommender_projects=[LAKE, NEW]
    )
    lake, new = add(connection, key_ring, LAKE, key_info), add(connection, key_ring, NEW, key_info)

    # FINOPS_GCP_RECOMMENDER_LOCATIONS: the same zones for every project, no BigQuery query.
    fixed = refresh(
        database_url, encryption_key, instance, [lake], locations=["us-central1-a", "us-central1-c"]
    )
    assert fixed.success
    metadata = fixed.asset_materializations_for_node("cost_recommendations")[0].metadata
    assert "gcp_queries" not in metadata and "gcp_bytes_billed" not in metadata
    assert metadata["gcp_asked_where"].value == {
        lake: "us-central1-a, us-central1-c, us-central1 and global"
    }
    assert metadata["gcp_requests"].value >= 3 * 2 + 1 * 4 + 2
    zones = {
        resource.split("/zones/")[1].split("/")[0]
        for resource in stored(connection, lake)[0]
        if "/zones/" in resource
    }
    assert zones == {"us-central1-a", "us-central1-c"}

    # A project the export has no rows of (new, or billed elsewhere): global lists only, and
    # the run says why.
    discovered = refresh(database_url, encryption_key, instance, [new])
    assert discovered.success
    metadata = discovered.asset_materializations_for_node("cost_recommendations")[0].metadata
    assert metadata["gcp_queries"].value == 1
    assert metadata["gcp_requests"].value == 2
    assert metadata["gcp_asked_where"].value == {new: "global only"}
    new_open = stored(connection, new)[0]
    assert new_open and all("/global/" in resource for resource in new_open)
    warnings = [
        str(event.message)
        for event in instance.all_logs(discovered.run_id)
        if event.level == logging.WARNING
    ]
    assert any(
        f"project {NEW} shows no zonal or regional usage" in text
        and "FINOPS_GCP_RECOMMENDER_LOCATIONS" in text
        for text in warnings
    )


def test_a_project_whose_export_cannot_be_read_fails_alone_with_a_typed_error(
    database_url: str,
    encryption_key: str,
    key_ring: KeyRing,
    connection: psycopg.Connection,
    instance: dg.DagsterInstance,
    sandbox: BigQuerySandbox,
    key_info: dict[str, Any],
) -> None:
    web = add(connection, key_ring, WEB, key_info)
    # The lake's credentials name an export table that does not exist: its locations cannot
    # be discovered, so nothing is asked and its stored set stays as it was.
    lake = add(
        connection,
        key_ring,
        LAKE,
        key_info,
        table=DEMO_EXPORT.table_name.rsplit(".", 1)[0]
        + ".gcp_billing_export_v1_000000_000000_000000",
    )
    result = refresh(database_url, encryption_key, instance, [web, lake])

    assert not result.success
    failure = next(
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    lake_line = next(line for line in description.splitlines() if line.startswith(f"- {lake}: "))
    assert "GcpAccessDeniedError: BigQuery denied" in lake_line and "Traceback" not in description
    assert web not in description
    assert stored(connection, web)[0] and stored(connection, lake) == (set(), set())
    assert key_info["private_key_id"] not in description
