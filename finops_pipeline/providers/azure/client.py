"""The real Cost Management client, built from explicit credentials and endpoints only.

``CostManagementClient`` (azure-mgmt-costmanagement 5.x) authenticates with azure-identity's
``ClientSecretCredential``. The first page comes from ``client.query.usage``; a ``cls``
callback hands back the raw HTTP response, because the SDK's models turn costs into floats.
Later pages are POSTed to ``nextLink`` with ``client.send_request``.

Two extra pipeline policies sit right after azure-core's retry policy: one waits out 429s
(:mod:`.throttling`), the other counts every response Resource Manager sends and sums the QPU
each one consumed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from azure.identity import AzureAuthorityHosts, ClientSecretCredential
from azure.mgmt.costmanagement import CostManagementClient

from finops_pipeline.errors import ProviderError
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.errors import (
    COST_MANAGEMENT_READER_ROLE,
    AzureAccessDeniedError,
    AzureAuthenticationError,
    AzureConfigurationError,
    AzureNetworkError,
    AzureQueryRejectedError,
    AzureScopeNotFoundError,
    AzureServiceError,
    AzureThrottledError,
    AzureUnsafeLinkError,
)
from finops_pipeline.providers.azure.paging import RawResponse
from finops_pipeline.providers.azure.query import PAGE_SIZE, CostScope
from finops_pipeline.providers.azure.throttling import (
    QPU_CONSUMED_HEADER,
    CostManagementThrottlingPolicy,
)

if TYPE_CHECKING:
    from finops_pipeline.providers.azure.advisor import AdvisorRecommendationsClient

PUBLIC_RESOURCE_MANAGER = "https://management.azure.com"
PUBLIC_AUTHORITY_HOST = f"https://{AzureAuthorityHosts.AZURE_PUBLIC_CLOUD}"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.]{1,64}$")
_AADSTS = re.compile(r"\bAADSTS\d{4,8}\b")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _https_base(url: str, what: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise AzureConfigurationError(
            f"The {what} must be an https URL such as https://management.azure.com; "
            "bearer tokens are never sent over plain http."
        )
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise AzureConfigurationError(f"The {what} must be a bare https://host[:port] URL.")
    return f"https://{parts.netloc}"


@dataclass(frozen=True)
class AzureEndpoints:
    """Where Resource Manager and Entra ID live; the public cloud unless overridden.

    Sovereign clouds and test doubles override both. A custom authority host skips Entra's
    instance discovery, which only the public cloud answers.
    """

    resource_manager: str = PUBLIC_RESOURCE_MANAGER
    authority_host: str = PUBLIC_AUTHORITY_HOST

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "resource_manager", _https_base(self.resource_manager, "Resource Manager URL")
        )
        object.__setattr__(
            self, "authority_host", _https_base(self.authority_host, "Entra authority host")
        )

    @property
    def credential_scope(self) -> str:
        return f"{self.resource_manager}/.default"

    @property
    def custom_authority(self) -> bool:
        return self.authority_host != PUBLIC_AUTHORITY_HOST


class RequestMeter(SansIOHTTPPolicy):
    """Counts every response Resource Manager sends and sums its QPU-consumed header."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.qpu_consumed = Decimal(0)
        self.by_status: Counter[int] = Counter()

    def on_response(self, request: PipelineRequest, response: PipelineResponse) -> None:
        self.requests += 1
        self.by_status[response.http_response.status_code] += 1
        consumed = response.http_response.headers.get(QPU_CONSUMED_HEADER)
        if consumed and (match := _NUMBER.search(consumed)):
            self.qpu_consumed += Decimal(match.group())


@dataclass
class ClientOptions:
    """Knobs for one client; tests shorten waits and inject transports."""

    #: Builds an azure-core transport; called once for Entra ID and once for Resource Manager.
    transport_factory: Callable[[], HttpTransport] | None = None
    throttling: CostManagementThrottlingPolicy | None = None
    #: azure-core's own retries of network errors and 5xx answers.
    retry_total: int = 3
    retry_backoff_factor: float = 0.8
    extra_client_kwargs: dict[str, Any] = field(default_factory=dict)


class CostManagementQueryClient:
    """Sends Query pages for one app registration; implements ``paging.QuerySender``."""

    def __init__(
        self,
        credentials: AzureClientSecretCredentials,
        endpoints: AzureEndpoints | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        self.credentials = credentials
        self.endpoints = endpoints or AzureEndpoints()
        opts = options or ClientOptions()
        self.options = opts
        self.meter = RequestMeter()
        self.throttling = opts.throttling or CostManagementThrottlingPolicy()
        # azure-core's network trace (``logging_enable``) logs request headers and bodies
        # unredacted at DEBUG: the bearer token and, for Entra ID, the client secret. It stays
        # off whatever the options say; the HTTP logging policy, which redacts, stays on.
        identity_kwargs: dict[str, Any] = {"logging_enable": False}
        client_kwargs: dict[str, Any] = {**opts.extra_client_kwargs, "logging_enable": False}
        if opts.transport_factory is not None:
            identity_kwargs["transport"] = opts.transport_factory()
            client_kwargs["transport"] = opts.transport_factory()
        self._credential = ClientSecretCredential(
            credentials.tenant_id,
            credentials.client_id,
            credentials.client_secret.reveal(),
            authority=self.endpoints.authority_host,
            disable_instance_discovery=self.endpoints.custom_authority,
            retry_total=opts.retry_total,
            retry_backoff_factor=opts.retry_backoff_factor,
            **identity_kwargs,
        )
        self._client = CostManagementClient(
            self._credential,
            base_url=self.endpoints.resource_manager,
            credential_scopes=[self.endpoints.credential_scope],
            per_retry_policies=[self.throttling, self.meter],
            retry_total=opts.retry_total,
            retry_backoff_factor=opts.retry_backoff_factor,
            **client_kwargs,
        )
        self._scope: CostScope | None = None

    def __repr__(self) -> str:
        return (
            f"CostManagementQueryClient(tenant_id={self.credentials.tenant_id!r}, "
            f"client_id={self.credentials.client_id!r}, "
            f"resource_manager={self.endpoints.resource_manager!r})"
        )

    def close(self) -> None:
        self._client.close()
        self._credential.close()

    def advisor(self, subscription_id: str) -> AdvisorRecommendationsClient:
        """An Advisor client for one subscription sharing this client's credential (and its
        cached token), endpoints, transport hook and throttling policy."""
        from finops_pipeline.providers.azure.advisor import AdvisorRecommendationsClient

        return AdvisorRecommendationsClient(
            self._credential,
            self.credentials,
            subscription_id,
            self.endpoints,
            self.options,
            self.throttling,
        )

    def __enter__(self) -> CostManagementQueryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def check_token(self, scope: CostScope) -> None:
        """Ask Entra ID for a Resource Manager token, proving the secret; the token stays in
        the credential's cache and is never returned."""
        try:
            self._credential.get_token(self.endpoints.credential_scope)
        except AzureError as error:
            raise self._translate(error, scope) from None

    # --- QuerySender ---------------------------------------------------------------------

    def first_page(self, scope: CostScope, body: bytes) -> RawResponse:
        self._scope = scope
        try:
            http_response = self._client.query.usage(
                scope.path,
                body,
                content_type="application/json",
                params={"$top": str(PAGE_SIZE)},
                # Streamed, so the SDK does not build its float-typed models from the body.
                stream=True,
                cls=lambda pipeline_response, _deserialized, _headers: (
                    pipeline_response.http_response
                ),
            )
            http_response.read()
        except AzureError as error:
            raise self._translate(error, scope) from None
        return RawResponse(status=http_response.status_code, text=http_response.text())

    def next_page(self, link: str, body: bytes) -> RawResponse:
        scope = self._scope
        if scope is None:
            raise RuntimeError("next_page before first_page")
        self._check_link(link, scope)
        request = HttpRequest(
            "POST",
            link,
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            response = self._client.send_request(request)
        except AzureError as error:
            raise self._translate(error, scope) from None
        if response.status_code not in (200, 204):
            raise error_for_status(
                response.status_code,
                arm_error_code(response.text()),
                scope=scope,
                credentials=self.credentials,
            )
        return RawResponse(status=response.status_code, text=response.text())

    # --- errors ----------------------------------------------------------------------------

    def _check_link(self, link: str, scope: CostScope) -> None:
        parts = urlsplit(link)
        if f"{parts.scheme}://{parts.netloc}" != self.endpoints.resource_manager:
            raise AzureUnsafeLinkError(
                f"Cost Management's nextLink for {scope.label} points to {parts.scheme}://"
                f"{parts.hostname}, not {self.endpoints.resource_manager}; the token is only "
                "sent to Resource Manager. Report this with the run id."
            )

    def _translate(self, error: AzureError, scope: CostScope) -> ProviderError:
        refused = entra_id_error(error, self.endpoints, self.credentials)
        if refused is not None:
            return refused
        if isinstance(error, HttpResponseError) and error.status_code is not None:
            text = error.response.text() if error.response is not None else ""
            return error_for_status(
                error.status_code, arm_error_code(text), scope=scope, credentials=self.credentials
            )
        if isinstance(error, ServiceRequestError | ServiceResponseError) or caused_by_network(
            error
        ):
            return network_error(self.endpoints.resource_manager, "Resource Manager")
        failure = ProviderError(
            f"The Cost Management query for {scope.label} failed ({type(error).__name__}). "
            "Retry the run; report it if it persists."
        )
        failure.permanent = False
        return failure


def from_resource_manager(error: ClientAuthenticationError, endpoints: AzureEndpoints) -> bool:
    response = getattr(error, "response", None)
    request = getattr(response, "request", None)
    url = getattr(request, "url", "") or ""
    return url.startswith(endpoints.resource_manager + "/")


def entra_id_error(
    error: Exception, endpoints: AzureEndpoints, credentials: AzureClientSecretCredentials
) -> ProviderError | None:
    """Entra ID refusing the app's client secret, or not reachable, as a typed error; None for
    anything else (Resource Manager's own 401s included)."""
    if not isinstance(error, ClientAuthenticationError) or from_resource_manager(error, endpoints):
        return None
    if caused_by_network(error):
        return network_error(endpoints.authority_host, "Entra ID")
    return AzureAuthenticationError(
        f"Entra ID refused the client secret of app {credentials.client_id} in tenant "
        f"{credentials.tenant_id}{aadsts_suffix(error)}. Check the tenant id and the secret (it "
        "may have expired), then store a new one for the account."
    )


def caused_by_network(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ServiceRequestError | ServiceResponseError | ConnectionError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def aadsts_suffix(error: BaseException) -> str:
    match = _AADSTS.search(str(getattr(error, "message", "") or error))
    return f" ({match.group()})" if match else ""


def network_error(endpoint: str, what: str) -> AzureNetworkError:
    return AzureNetworkError(
        f"Could not reach {what} at {endpoint} (network error); nothing was kept. Check network "
        "access and the endpoint, then retry."
    )


def arm_error_code(text: str | None) -> str | None:
    """The ``error.code`` of an ARM error body, if it is a plain identifier."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else None


def error_for_status(
    status: int,
    code: str | None,
    *,
    scope: CostScope,
    credentials: AzureClientSecretCredentials,
) -> ProviderError:
    """The typed error for a Resource Manager status; built only from codes and ids."""
    detail = f"{status} {code}" if code else str(status)
    if status == 401:
        return AzureAuthenticationError(
            f"Azure Resource Manager refused the token of app {credentials.client_id} for "
            f"{scope.label} ({detail}). Check that tenant {credentials.tenant_id} owns the "
            "subscription and that the endpoint and authority host belong to one cloud."
        )
    if status == 403:
        return AzureAccessDeniedError(
            f"Azure denied the Cost Management query on {scope.label} ({detail}). Assign app "
            f"{credentials.client_id} the {COST_MANAGEMENT_READER_ROLE} role on {scope.path}, "
            "then run `finops accounts validate`."
        )
    if status == 404:
        return AzureScopeNotFoundError(
            f"Azure does not know {scope.label} ({detail}). Check the id, and that it belongs "
            f"to Entra tenant {credentials.tenant_id}."
        )
    if status == 429:
        return AzureThrottledError(
            f"Azure Cost Management kept throttling the query for {scope.label} ({detail}); "
            "retry the run later."
        )
    if status == 400:
        return AzureQueryRejectedError(
            f"Azure Cost Management rejected the query for {scope.label} as invalid ({detail}). "
            "This is a bug; report it with the run id."
        )
    if status >= 500:
        return AzureServiceError(
            f"Azure Cost Management failed to answer for {scope.label} ({detail}) after "
            "retries; retry the run later."
        )
    failure = ProviderError(
        f"Azure Cost Management answered {detail} for {scope.label}. Retry the run; report it "
        "if it persists."
    )
    failure.permanent = False
    return failure
