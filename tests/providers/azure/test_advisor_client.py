"""Advisor's recommendations through the real AdvisorManagementClient and azure-identity.

Fakes sit only below azure-core: the sandbox transport, or an in-process transport whose
Resource Manager answers are canned per test (Entra ID stays the sandbox's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from finops_pipeline.errors import ProviderDataError, ProviderError
from finops_pipeline.providers.azure.advisor import (
    AdvisorRecommendationsClient,
    fetch_azure_recommendations,
)
from finops_pipeline.providers.azure.client import ClientOptions, CostManagementQueryClient
from finops_pipeline.providers.azure.errors import (
    ADVISOR_READER_ROLE,
    AzureAccessDeniedError,
    AzureAuthenticationError,
    AzurePaginationLoopError,
    AzureScopeNotFoundError,
    AzureServiceError,
    AzureThrottledError,
    AzureUnsafeLinkError,
)
from finops_pipeline.providers.azure.sandbox import (
    SANDBOX_RESOURCE_MANAGER,
    AzureCostManagementSandbox,
    InProcessTransport,
    SandboxResponse,
    sandbox_credentials,
)
from finops_pipeline.providers.azure.sandbox.advisor import fleet_size
from finops_pipeline.providers.azure.throttling import CostManagementThrottlingPolicy
from finops_pipeline.security.credentials import Secret
from tests.providers.azure.conftest import (
    NO_READER,
    PRODUCTION,
    SANDBOX_ENDPOINTS,
    TENANT,
    SleepRecorder,
)
from tests.providers.azure.test_advisor_parsing import RESIZE, advisor_item

ADVISOR_PATH = (
    f"/subscriptions/{PRODUCTION.subscription_id}/providers/Microsoft.Advisor/recommendations"
)
Answer = Callable[[str, str], SandboxResponse]


def _json(status: int, document: Any, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse(
        status,
        {"content-type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(document).encode(),
    )


@pytest.fixture
def advisor_for(
    make_sandbox: Callable[..., AzureCostManagementSandbox], sleeps: SleepRecorder
) -> Iterator[Callable[..., AdvisorRecommendationsClient]]:
    clients: list[CostManagementQueryClient] = []

    def build(
        *,
        sandbox: AzureCostManagementSandbox | None = None,
        answer: Answer | None = None,
        subscription: str = PRODUCTION.subscription_id,
        secret: str | None = None,
    ) -> AdvisorRecommendationsClient:
        tenant_sandbox = sandbox or make_sandbox()

        def handle(
            method: str, url: str, headers: Mapping[str, str], body: bytes | str | None
        ) -> SandboxResponse:
            if answer is not None and url.startswith(SANDBOX_RESOURCE_MANAGER):
                return answer(method, url)
            return tenant_sandbox.handle(method, url, headers, body)

        credentials = sandbox_credentials(TENANT)
        if secret is not None:
            credentials = credentials.__class__(
                tenant_id=credentials.tenant_id,
                client_id=credentials.client_id,
                client_secret=Secret(secret),
                authority_host=credentials.authority_host,
            )
        query = CostManagementQueryClient(
            credentials,
            SANDBOX_ENDPOINTS,
            ClientOptions(
                transport_factory=lambda: InProcessTransport(handle, tenant_sandbox.base_urls),
                throttling=CostManagementThrottlingPolicy(max_wait_seconds=60, sleep=sleeps),
                retry_total=0,
                retry_backoff_factor=0.0,
            ),
        )
        clients.append(query)
        return query.advisor(subscription)

    yield build
    for client in clients:
        client.close()


def test_every_page_is_followed_and_counted_through_the_real_sdk(
    make_sandbox: Callable[..., AzureCostManagementSandbox],
    advisor_for: Callable[..., AdvisorRecommendationsClient],
) -> None:
    sandbox = make_sandbox(advisor_page_size=4)
    whole = make_sandbox(advisor_page_size=1000)
    fetched = fetch_azure_recommendations(advisor_for(sandbox=sandbox))
    single = fetch_azure_recommendations(advisor_for(sandbox=whole))

    pages = sandbox.counts.advisor_pages
    assert pages >= 3 and fetched.requests == pages  # one request per page, nothing else
    assert single.requests == 1 and whole.counts.advisor_pages == 1
    assert fetched.paid_requests == 0  # Advisor is not billed and consumes no QPU
    assert [r.key for r in fetched.records] == [r.key for r in single.records]
    kinds = {r.kind for r in fetched.records}
    assert kinds == {"rightsize", "terminate", "commitment_purchase", "advisor_cost"}
    assert fleet_size(sandbox.settings.seed, PRODUCTION) > len(fetched.records) > 10
    assert all(r.account == PRODUCTION.subscription_id for r in fetched.records)
    # Amounts arrive as the sandbox wrote them, exactly.
    rightsized = next(r for r in fetched.records if r.kind == "rightsize")
    assert rightsized.estimated_monthly_savings == Decimal(
        rightsized.raw["properties"]["extendedProperties"]["savingsAmount"]
    )


def test_the_list_asks_for_cost_recommendations_only(
    advisor_for: Callable[..., AdvisorRecommendationsClient],
) -> None:
    seen: list[str] = []

    def answer(method: str, url: str) -> SandboxResponse:
        seen.append(url)
        return _json(200, {"value": [advisor_item(extended=RESIZE)]})

    fetched = fetch_azure_recommendations(advisor_for(answer=answer))
    (url,) = seen
    parts = urlsplit(url)
    assert parts.path == ADVISOR_PATH
    query = parse_qs(parts.query)
    assert query["$filter"] == ["Category eq 'Cost'"] and query["api-version"] == ["2020-01-01"]
    assert [r.kind for r in fetched.records] == ["rightsize"]


@pytest.mark.parametrize(
    ("status", "code", "error", "match"),
    [
        (401, "InvalidAuthenticationToken", AzureAuthenticationError, "refused the token"),
        (403, "AuthorizationFailed", AzureAccessDeniedError, f"the {ADVISOR_READER_ROLE} role"),
        (404, "SubscriptionNotFound", AzureScopeNotFoundError, "does not know subscription"),
        (500, "InternalServerError", AzureServiceError, "failed to answer"),
        (503, "ServiceUnavailable", AzureServiceError, "retry the refresh later"),
    ],
)
def test_error_statuses_are_typed_one_line_errors(
    advisor_for: Callable[..., AdvisorRecommendationsClient],
    status: int,
    code: str,
    error: type[ProviderError],
    match: str,
) -> None:
    def answer(method: str, url: str) -> SandboxResponse:
        return _json(status, {"error": {"code": code, "message": "the service's own words"}})

    with pytest.raises(error, match=match) as raised:
        fetch_azure_recommendations(advisor_for(answer=answer))
    message = str(raised.value)
    assert "\n" not in message and "the service's own words" not in message
    assert PRODUCTION.subscription_id in message
    assert raised.value.permanent is (status < 500)


def test_the_sandbox_refuses_a_subscription_without_the_role_naming_reader(
    advisor_for: Callable[..., AdvisorRecommendationsClient],
) -> None:
    with pytest.raises(AzureAccessDeniedError, match=r"the Reader role on /subscriptions/"):
        fetch_azure_recommendations(advisor_for(subscription=NO_READER.subscription_id))


def test_throttling_is_waited_out_then_a_transient_typed_error(
    advisor_for: Callable[..., AdvisorRecommendationsClient], sleeps: SleepRecorder
) -> None:
    calls: list[int] = []

    def twice_then_ok(method: str, url: str) -> SandboxResponse:
        calls.append(1)
        if len(calls) <= 2:
            return _json(429, {"error": {"code": "TooManyRequests"}}, {"retry-after": "3"})
        return _json(200, {"value": [advisor_item(extended=RESIZE)]})

    fetched = fetch_azure_recommendations(advisor_for(answer=twice_then_ok))
    assert sleeps.waits == [3.0, 3.0] and len(fetched.records) == 1
    assert fetched.requests == 3  # the 429s were requests too

    def always(method: str, url: str) -> SandboxResponse:
        return _json(429, {"error": {"code": "TooManyRequests"}}, {"retry-after": "3"})

    with pytest.raises(AzureThrottledError, match="Azure Advisor kept throttling") as raised:
        fetch_azure_recommendations(advisor_for(answer=always))
    assert raised.value.permanent is False


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>upstream gateway</html>", "text/html"),
        (b"{not json", "application/json"),
        (b'{"value": {"not": "a list"}}', "application/json"),
    ],
)
def test_a_malformed_page_is_a_typed_data_error(
    advisor_for: Callable[..., AdvisorRecommendationsClient], body: bytes, content_type: str
) -> None:
    def answer(method: str, url: str) -> SandboxResponse:
        return SandboxResponse(200, {"content-type": content_type}, body)

    with pytest.raises(ProviderDataError, match="nothing was stored"):
        fetch_azure_recommendations(advisor_for(answer=answer))


def test_a_next_link_elsewhere_or_repeated_is_never_followed(
    advisor_for: Callable[..., AdvisorRecommendationsClient],
) -> None:
    calls: list[str] = []

    def elsewhere(method: str, url: str) -> SandboxResponse:
        calls.append(url)
        return _json(
            200,
            {
                "value": [advisor_item(extended=RESIZE)],
                "nextLink": "https://attacker.example/subscriptions/x?$skiptoken=1",
            },
        )

    with pytest.raises(AzureUnsafeLinkError, match=r"attacker\.example"):
        fetch_azure_recommendations(advisor_for(answer=elsewhere))
    assert len(calls) == 1

    loop = f"{SANDBOX_RESOURCE_MANAGER}{ADVISOR_PATH}?api-version=2020-01-01&$skiptoken=same"

    def repeating(method: str, url: str) -> SandboxResponse:
        calls.append(url)
        return _json(200, {"value": [], "nextLink": loop})

    with pytest.raises(AzurePaginationLoopError):
        fetch_azure_recommendations(advisor_for(answer=repeating))


def test_a_wrong_secret_is_refused_by_entra_and_never_shown(
    advisor_for: Callable[..., AdvisorRecommendationsClient],
) -> None:
    wrong = "wrong~advisor-secret-0000000000000000000001"
    client = advisor_for(secret=wrong)
    with pytest.raises(AzureAuthenticationError, match="AADSTS7000215") as raised:
        fetch_azure_recommendations(client)
    assert wrong not in str(raised.value) and wrong not in repr(client)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
