"""Azure Advisor's cost recommendations through the real ``AdvisorManagementClient``.

The client (azure-mgmt-advisor 9.x, api-version 2020-01-01) shares the Cost Management
client's ``ClientSecretCredential`` (one token for both), endpoints, transport hook and
policies: the throttling policy waits out 429s and a :class:`~.client.RequestMeter` of its own
counts every response. ``recommendations.list`` follows ``nextLink`` to the last page; a
``raw_response_hook`` keeps each page's raw JSON, which :mod:`.recommendations` parses, so the
SDK's models never stand between the service and the stored payload. A ``nextLink`` to another
host, or one already followed, stops the listing before the token is sent again.

Advisor is not billed and consumes no Cost Management QPU: a weekly refresh of one subscription
is one request per page (one for most subscriptions) plus, once per run and app registration,
Entra ID's token request shared with the cost queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    DeserializationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineResponse
from azure.mgmt.advisor import AdvisorManagementClient

from finops_pipeline.errors import ProviderDataError, ProviderError
from finops_pipeline.insights.recommendations import Recommendation
from finops_pipeline.providers.azure.client import (
    AzureEndpoints,
    ClientOptions,
    RequestMeter,
    arm_error_code,
    caused_by_network,
    entra_id_error,
    network_error,
)
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.errors import (
    ADVISOR_READER_ROLE,
    AzureAccessDeniedError,
    AzureAuthenticationError,
    AzurePaginationLoopError,
    AzureQueryRejectedError,
    AzureScopeNotFoundError,
    AzureServiceError,
    AzureThrottledError,
    AzureUnsafeLinkError,
)
from finops_pipeline.providers.azure.recommendations import (
    COST_FILTER,
    DEFAULT_COMMITMENT_CHOICE,
    CommitmentChoice,
    page_items,
    parse_pages,
)
from finops_pipeline.providers.azure.throttling import CostManagementThrottlingPolicy
from finops_pipeline.providers.recommenders import FetchedRecommendations

#: Pages followed at most; Advisor pages hold dozens of recommendations.
MAX_PAGES = 1000


@dataclass
class AdvisorPages:
    """The raw pages of one listing and the requests it took (every response, retries too)."""

    pages: list[str] = field(default_factory=list)
    requests: int = 0


class AdvisorRecommendationsClient:
    """Lists one subscription's Advisor recommendations with an app registration's token."""

    def __init__(
        self,
        credential: TokenCredential,
        credentials: AzureClientSecretCredentials,
        subscription_id: str,
        endpoints: AzureEndpoints,
        options: ClientOptions,
        throttling: CostManagementThrottlingPolicy,
    ) -> None:
        self.credentials = credentials
        self.subscription_id = subscription_id
        self.endpoints = endpoints
        self.meter = RequestMeter()
        # As for Cost Management: azure-core's network trace logs headers unredacted (the
        # bearer token), so it stays off whatever the options say.
        client_kwargs: dict[str, Any] = {**options.extra_client_kwargs, "logging_enable": False}
        if options.transport_factory is not None:
            client_kwargs["transport"] = options.transport_factory()
        self._client = AdvisorManagementClient(
            credential,
            subscription_id,
            base_url=endpoints.resource_manager,
            credential_scopes=[endpoints.credential_scope],
            per_retry_policies=[throttling, self.meter],
            retry_total=options.retry_total,
            retry_backoff_factor=options.retry_backoff_factor,
            **client_kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"AdvisorRecommendationsClient(subscription_id={self.subscription_id!r}, "
            f"client_id={self.credentials.client_id!r}, "
            f"resource_manager={self.endpoints.resource_manager!r})"
        )

    @property
    def label(self) -> str:
        return f"subscription {self.subscription_id}"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AdvisorRecommendationsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_cost_pages(self) -> AdvisorPages:
        """Every page of the subscription's cost recommendations, as raw JSON text.

        Raises:
            A typed Azure error (see :func:`advisor_error_for_status`), ProviderDataError for a
            malformed page, AzureUnsafeLinkError or AzurePaginationLoopError for a bad nextLink.
        """
        result = AdvisorPages()
        followed: set[str] = set()
        before = self.meter.requests

        def keep_page(response: PipelineResponse) -> None:
            http_response = response.http_response
            if http_response.status_code != 200:
                return
            text = http_response.text()
            _items, link = page_items(text)
            if link is not None:
                self._check_link(link, followed)
            result.pages.append(text)

        try:
            for page in self._client.recommendations.list(
                filter=COST_FILTER, raw_response_hook=keep_page
            ).by_page():
                for _item in page:  # drains the page, so the SDK asks for the next one
                    pass
        except AzureThrottledError:
            raise AzureThrottledError(
                f"Azure Advisor kept throttling the recommendations of {self.label}; retry the "
                "refresh later."
            ) from None
        except (AzureError, DeserializationError) as error:
            raise self._translate(error) from None
        finally:
            result.requests = self.meter.requests - before
        return result

    def _check_link(self, link: str, followed: set[str]) -> None:
        parts = urlsplit(link)
        if f"{parts.scheme}://{parts.netloc}" != self.endpoints.resource_manager:
            raise AzureUnsafeLinkError(
                f"Azure Advisor's nextLink for {self.label} points to {parts.scheme}://"
                f"{parts.hostname}, not {self.endpoints.resource_manager}; the token is only "
                "sent to Resource Manager. Report this with the run id."
            )
        if link in followed or len(followed) >= MAX_PAGES:
            raise AzurePaginationLoopError(
                f"Azure Advisor repeated a nextLink for {self.label}; stopped before an endless "
                "loop. Retry the refresh later."
            )
        followed.add(link)

    def _translate(self, error: Exception) -> ProviderError:
        refused = entra_id_error(error, self.endpoints, self.credentials)
        if refused is not None:
            return refused
        if isinstance(error, HttpResponseError) and error.status_code is not None:
            if error.status_code == 200:  # a 200 whose body is not JSON (DecodeError)
                return _malformed(self.label)
            text = error.response.text() if error.response is not None else ""
            return advisor_error_for_status(
                error.status_code,
                arm_error_code(text),
                subscription_id=self.subscription_id,
                credentials=self.credentials,
            )
        if isinstance(error, DeserializationError):
            return _malformed(self.label)
        if isinstance(error, ServiceRequestError | ServiceResponseError) or caused_by_network(
            error
        ):
            return network_error(self.endpoints.resource_manager, "Resource Manager")
        failure = ProviderError(
            f"Listing Azure Advisor's recommendations for {self.label} failed "
            f"({type(error).__name__}). Retry the refresh; report it if it persists."
        )
        failure.permanent = False
        return failure


def _malformed(label: str) -> ProviderDataError:
    return ProviderDataError(
        f"Azure Advisor sent a recommendations page for {label} that could not be read; "
        "nothing was stored for this subscription. Retry the refresh; report it if it persists."
    )


def advisor_error_for_status(
    status: int,
    code: str | None,
    *,
    subscription_id: str,
    credentials: AzureClientSecretCredentials,
) -> ProviderError:
    """The typed error for a Resource Manager status on the Advisor list; built only from
    codes and ids, never from the service's message."""
    detail = f"{status} {code}" if code else str(status)
    scope = f"/subscriptions/{subscription_id}"
    if status == 401:
        return AzureAuthenticationError(
            f"Azure Resource Manager refused the token of app {credentials.client_id} for "
            f"Advisor on subscription {subscription_id} ({detail}). Check that tenant "
            f"{credentials.tenant_id} owns the subscription and that the endpoint and "
            "authority host belong to one cloud."
        )
    if status == 403:
        return AzureAccessDeniedError(
            f"Azure denied listing Advisor recommendations on subscription {subscription_id} "
            f"({detail}). Assign app {credentials.client_id} the {ADVISOR_READER_ROLE} role on "
            f"{scope} (Cost Management Reader alone does not read Advisor), then refresh again."
        )
    if status == 404:
        return AzureScopeNotFoundError(
            f"Azure does not know subscription {subscription_id} ({detail}). Check the id, and "
            f"that it belongs to Entra tenant {credentials.tenant_id}."
        )
    if status == 429:
        return AzureThrottledError(
            f"Azure Advisor kept throttling the recommendations of subscription "
            f"{subscription_id} ({detail}); retry the refresh later."
        )
    if status == 400:
        return AzureQueryRejectedError(
            f"Azure Advisor rejected the recommendations list for subscription "
            f"{subscription_id} as invalid ({detail}). This is a bug; report it with the run id."
        )
    if status >= 500:
        return AzureServiceError(
            f"Azure Advisor failed to answer for subscription {subscription_id} ({detail}) "
            "after retries; retry the refresh later."
        )
    failure = ProviderError(
        f"Azure Advisor answered {detail} for subscription {subscription_id}. Retry the "
        "refresh; report it if it persists."
    )
    failure.permanent = False
    return failure


def fetch_azure_recommendations(
    client: AdvisorRecommendationsClient,
    *,
    commitments: CommitmentChoice = DEFAULT_COMMITMENT_CHOICE,
) -> FetchedRecommendations:
    """The subscription's complete set of Advisor cost recommendations, or a typed error.

    ``paid_requests`` is 0 (Advisor is not billed and consumes no QPU); ``requests`` counts
    every Resource Manager response the listing took.
    """
    listed = client.list_cost_pages()
    records: list[Recommendation] = parse_pages(
        listed.pages, subscription_id=client.subscription_id, commitments=commitments
    )
    return FetchedRecommendations(records=records, paid_requests=0, requests=listed.requests)
