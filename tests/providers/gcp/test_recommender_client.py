"""The real RecommenderClient (REST transport) against the sandbox, over the requests adapter.

Sandbox credentials name the reserved ``.invalid`` hosts; the registry's hook mounts the
adapter on the client's AuthorizedSession, so the real client, google-auth and the REST
transport build, sign and parse every request and answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from finops_pipeline.constants import PROVIDER_GCP
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.gcp.credentials import GcpServiceAccountCredentials
from finops_pipeline.providers.gcp.errors import (
    GcpThrottledError,
    GcpTransientError,
    RecommenderAccessDeniedError,
    RecommenderApiDisabledError,
    RecommenderLocationError,
)
from finops_pipeline.providers.gcp.recommendations import (
    GLOBAL,
    RecommenderLocations,
    request_count,
)
from finops_pipeline.providers.gcp.recommender import (
    RecommenderReader,
    build_recommender_client,
    recommender_endpoint_for,
)
from finops_pipeline.providers.gcp.sandbox.catalogue import SANDBOX_PROJECT_ZONES
from finops_pipeline.providers.gcp.sandbox.hook import (
    DEMO_EXPORT,
    RECOMMENDER_SANDBOX_ENDPOINT,
    SANDBOX_API_ENDPOINT,
    SANDBOX_TOKEN_ENDPOINT,
    process_sandbox,
)
from finops_pipeline.providers.gcp.sandbox.server import BigQuerySandbox
from finops_pipeline.providers.gcp.service_account import ServiceAccountKey

pytestmark = pytest.mark.integration

READER = "recommendations-reader@ops-host-7.iam.gserviceaccount.com"
PROJECT = "shop-prod-1234"
OTHER = "shop-staging-77"
SANDBOX_LOCATIONS = (*SANDBOX_PROJECT_ZONES, "us-central1", GLOBAL)


@pytest.fixture
def sandbox() -> Iterator[BigQuerySandbox]:
    """The process sandbox at a fixed generation and small pages; restored afterwards."""
    sandbox = process_sandbox()
    page_size = sandbox.recommender.page_size
    sandbox.generation, sandbox.recommender.page_size = 0, 2
    yield sandbox
    sandbox.generation, sandbox.recommender.page_size = None, page_size
    sandbox.clear_faults()
    for project in (PROJECT, OTHER):
        sandbox.enable_recommender_api(project)


@pytest.fixture
def key_info(sandbox: BigQuerySandbox) -> dict[str, Any]:
    return sandbox.create_service_account(
        READER, project_id="ops-host-7", recommender_projects=[PROJECT]
    )


def sandbox_credentials(key_info: dict[str, Any]) -> GcpServiceAccountCredentials:
    return GcpServiceAccountCredentials(
        key=ServiceAccountKey.from_json(json.dumps(key_info)),
        table=DEMO_EXPORT.table_name,
        location="US",
        api_endpoint=SANDBOX_API_ENDPOINT,
        token_endpoint=SANDBOX_TOKEN_ENDPOINT,
    )


def reader_for(key_info: dict[str, Any], *, deadline: float = 2.0) -> RecommenderReader:
    credentials = sandbox_credentials(key_info)
    endpoint = recommender_endpoint_for(credentials.api_endpoint)
    client = build_recommender_client(
        credentials.key,
        api_endpoint=endpoint,
        token_uri=credentials.token_endpoint,
        client_hook=provider_spec(PROVIDER_GCP).client_hook,
    )
    return RecommenderReader(
        client, client_email=credentials.key.client_email, retry_deadline_seconds=deadline
    )


def test_a_sandbox_project_reaches_the_sandbox_host_never_google() -> None:
    assert recommender_endpoint_for(SANDBOX_API_ENDPOINT) == RECOMMENDER_SANDBOX_ENDPOINT
    assert recommender_endpoint_for(None) is None  # Google's own endpoint
    assert recommender_endpoint_for("https://bigquery-psc.p.googleapis.com") is None
    assert recommender_endpoint_for("http://127.0.0.1:9050") == "http://127.0.0.1:9050"


def test_the_real_client_pages_every_list_and_counts_each_request(
    sandbox: BigQuerySandbox, key_info: dict[str, Any]
) -> None:
    locations = RecommenderLocations.parse(SANDBOX_PROJECT_ZONES)
    sandbox.reset_records()
    reader = reader_for(key_info)
    try:
        fetched = reader.fetch(PROJECT, locations)
    finally:
        reader.close()
    lists = [
        path
        for method, path in sandbox.requests
        if method == "GET" and path.endswith("/recommendations")
    ]
    assert fetched.requests == len(lists)
    # Pages of two: some lists took more than one request.
    assert len(lists) > request_count(locations)
    assert fetched.paid_requests == 0
    expected = sandbox.recommender.open_cost_count(PROJECT, SANDBOX_LOCATIONS, generation=0)
    assert len(fetched.records) == expected
    kinds = {record.kind for record in fetched.records}
    assert kinds == {"rightsize", "terminate", "commitment_purchase"}
    # CLAIMED counts as open; DISMISSED and the PERFORMANCE upsizing do not.
    states = {record.raw["stateInfo"]["state"] for record in fetched.records}
    assert states == {"ACTIVE", "CLAIMED"}
    resize = next(
        r for r in fetched.records if r.resource_id.endswith("/us-central1-a/instances/1234-app-1")
    )
    # n2-standard-8 to n2-standard-4: 283.5360 - 141.7680 a month.
    assert resize.estimated_monthly_savings == Decimal("141.768")
    assert resize.current == "n2-standard-8, VM 1234-app-1 (us-central1-a)"
    assert resize.recommended == "n2-standard-4"


def test_an_idle_vm_disappears_in_the_next_generation(
    sandbox: BigQuerySandbox, key_info: dict[str, Any]
) -> None:
    locations = RecommenderLocations.parse(SANDBOX_PROJECT_ZONES)
    reader = reader_for(key_info)
    try:
        first = {r.key for r in reader.fetch(PROJECT, locations).records}
        sandbox.generation = 1
        second = {r.key for r in reader.fetch(PROJECT, locations).records}
    finally:
        reader.close()
    gone = first - second
    assert [key.source for key in gone] == ["compute_instance_idle"] and second < first


def test_an_api_not_enabled_says_how_to_enable_it(
    sandbox: BigQuerySandbox, key_info: dict[str, Any]
) -> None:
    sandbox.disable_recommender_api(PROJECT)
    reader = reader_for(key_info)
    with pytest.raises(RecommenderApiDisabledError) as raised:
        reader.fetch(PROJECT, RecommenderLocations.parse(SANDBOX_PROJECT_ZONES))
    reader.close()
    message = str(raised.value)
    assert "gcloud services enable recommender.googleapis.com --project " in message
    assert "\n" not in message and raised.value.permanent


def test_a_missing_grant_names_the_viewer_roles(
    sandbox: BigQuerySandbox, key_info: dict[str, Any]
) -> None:
    reader = reader_for(key_info)
    with pytest.raises(RecommenderAccessDeniedError) as raised:
        reader.fetch(OTHER, RecommenderLocations.parse(SANDBOX_PROJECT_ZONES))
    reader.close()
    assert "roles/recommender.viewer" in str(raised.value)
    assert "roles/recommender.computeViewer" in str(raised.value)


def test_a_location_that_does_not_exist_is_a_location_error(
    sandbox: BigQuerySandbox, key_info: dict[str, Any]
) -> None:
    reader = reader_for(key_info)
    with pytest.raises(RecommenderLocationError, match="FINOPS_GCP_RECOMMENDER_LOCATIONS"):
        reader.fetch(PROJECT, RecommenderLocations.parse(["us-central1-z"]))
    reader.close()


@pytest.mark.parametrize(("status", "error"), [(429, GcpThrottledError), (503, GcpTransientError)])
def test_throttling_and_server_errors_are_retried_then_typed(
    sandbox: BigQuerySandbox, key_info: dict[str, Any], status: int, error: type[Exception]
) -> None:
    locations = RecommenderLocations.parse(SANDBOX_PROJECT_ZONES)
    # One failure is retried away.
    sandbox.fail_next(1, status=status, path_contains="/v1/projects/")
    reader = reader_for(key_info, deadline=5.0)
    try:
        assert reader.fetch(PROJECT, locations).records
        # A failure that lasts past the retry deadline is typed, and not permanent.
        sandbox.fail_next(100, status=status, path_contains="/v1/projects/")
        with pytest.raises(error) as raised:
            reader.fetch(PROJECT, locations)
    finally:
        reader.close()
        sandbox.clear_faults()
    assert not raised.value.permanent


def test_the_private_key_never_reaches_logs_or_errors(
    sandbox: BigQuerySandbox, key_info: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.disable_recommender_api(PROJECT)
    reader = reader_for(key_info)
    with pytest.raises(RecommenderApiDisabledError) as raised:
        reader.fetch(PROJECT, RecommenderLocations.parse(SANDBOX_PROJECT_ZONES))
    texts = [str(raised.value), repr(reader), caplog.text]
    reader.close()
    secrets = [key_info["private_key"], key_info["private_key_id"]] + [
        line for line in key_info["private_key"].splitlines() if "-----" not in line and line
    ]
    for text in texts:
        assert not any(secret in text for secret in secrets)
