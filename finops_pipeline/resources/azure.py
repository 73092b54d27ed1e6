"""The Azure Cost Management resource: the Azure implementation of the collector seam."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import dagster as dg
from pydantic import Field, PrivateAttr

from finops_pipeline.config import FinopsConfig
from finops_pipeline.constants import PROVIDER_AZURE
from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.db.request_budget import UNIT_QPU
from finops_pipeline.errors import CredentialError
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.azure.advisor import fetch_azure_recommendations
from finops_pipeline.providers.azure.client import (
    PUBLIC_AUTHORITY_HOST,
    PUBLIC_RESOURCE_MANAGER,
    AzureEndpoints,
    ClientOptions,
    CostManagementQueryClient,
)
from finops_pipeline.providers.azure.collector import fetch_daily_costs, fetch_daily_totals
from finops_pipeline.providers.azure.credentials import AzureClientSecretCredentials
from finops_pipeline.providers.azure.parsing import MONTH_CLOSE_DAY
from finops_pipeline.providers.azure.query import CostScope
from finops_pipeline.providers.azure.throttling import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_WAIT_SECONDS,
    CostManagementThrottlingPolicy,
)
from finops_pipeline.providers.base import FetchedCosts, ProviderTotals
from finops_pipeline.providers.recommenders import FetchedRecommendations
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange

#: The quota Cost Management charges queries in; metadata shows ``azure_qpu_consumed``.
QPU_UNIT = "azure_qpu"


def client_for(
    credentials: AzureClientSecretCredentials,
    endpoints: AzureEndpoints,
    *,
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
    max_throttle_retries: int = DEFAULT_MAX_RETRIES,
) -> CostManagementQueryClient:
    """A Query client for one app registration, with the registry's hook applied.

    The hook sees the options before the client is built (azure-core fixes the transport
    then); it binds the sandbox for the sandbox's reserved endpoint and nothing else.
    """
    options = ClientOptions(
        throttling=CostManagementThrottlingPolicy(
            max_wait_seconds=max_wait_seconds, max_retries=max_throttle_retries
        )
    )
    hook = provider_spec(PROVIDER_AZURE).client_hook
    if hook is not None:
        hook(options, endpoints.resource_manager)
    return CostManagementQueryClient(credentials, endpoints, options)


class AzureCostManagementResource(dg.ConfigurableResource):
    """Fetches subscriptions' daily costs from the Azure Cost Management Query API.

    Each account is a subscription, queried at ``/subscriptions/{id}`` with its own app
    registration's client secret (``azure_client_secret`` credentials). A range is split into
    whole-month queries, each sent as ``ActualCost`` and ``AmortizedCost``; every request and
    the query processing units (QPU) it consumed are counted. Queries are not billed, but the
    QPU quota (per Entra tenant: 12 per 10 s, 60 per minute, 600 per hour) is shared.
    """

    #: The budget counts Azure's query processing units, not (unbilled) requests.
    paid_request_unit: ClassVar[str] = UNIT_QPU
    provider: str = PROVIDER_AZURE
    endpoint_url: str | None = Field(
        default=None,
        description="Resource Manager URL for every account (sovereign cloud or a test "
        "double). An account's own endpoint_url takes precedence.",
    )
    authority_host: str | None = Field(
        default=None,
        description="Entra authority host for every account; an account's own takes precedence.",
    )
    max_wait_seconds: float = Field(
        default=DEFAULT_MAX_WAIT_SECONDS,
        ge=0,
        description="Longest wait a 429 may ask for before the run gives up (transient).",
    )
    max_throttle_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, le=20)
    month_close_day: int = Field(
        default=MONTH_CLOSE_DAY,
        ge=1,
        le=28,
        description="Day of the next month until which a month's costs may change; its days "
        "are is_estimated until then.",
    )
    reconcile_totals: bool | None = Field(
        default=None,
        description="Ask Cost Management for the subscription's ungrouped daily ActualCost "
        "total (one more query, and its QPU, per query window), for the reconciliation "
        "check. None: FINOPS_RECONCILE_AZURE, on unless set to 0.",
    )

    # One client per app registration and endpoints for the life of the run, so every range
    # of a run shares one token (Entra ID is asked once).
    _clients: dict[tuple[str, str, str, str], CostManagementQueryClient] = PrivateAttr(
        default_factory=dict
    )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Close the run's clients (their HTTP sessions and token caches)."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def endpoints_for(
        self, account: CloudAccount, credentials: AzureClientSecretCredentials
    ) -> AzureEndpoints:
        """The account's endpoints: its own, else the resource's, else the public cloud."""
        return AzureEndpoints(
            resource_manager=account.endpoint_url or self.endpoint_url or PUBLIC_RESOURCE_MANAGER,
            authority_host=credentials.authority_host
            or self.authority_host
            or PUBLIC_AUTHORITY_HOST,
        )

    def client_for(
        self, account: CloudAccount, credentials: Credentials
    ) -> CostManagementQueryClient:
        """This run's client for the account's app registration."""
        if not isinstance(credentials, AzureClientSecretCredentials):
            raise CredentialError(
                f"Account {account.id} stores {credentials.kind} credentials; Azure accounts "
                "need an app registration's client secret. Re-add it with "
                "`finops accounts add --provider azure`."
            )
        endpoints = self.endpoints_for(account, credentials)
        key = (
            credentials.tenant_id,
            credentials.client_id,
            endpoints.resource_manager,
            endpoints.authority_host,
        )
        client = self._clients.get(key)
        if client is None or client.credentials != credentials:
            if client is not None:  # the secret was rotated during the run
                client.close()
            client = self._clients[key] = client_for(
                credentials,
                endpoints,
                max_wait_seconds=self.max_wait_seconds,
                max_throttle_retries=self.max_throttle_retries,
            )
        return client

    def fetch_daily_costs(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedCosts:
        """Every day of ``window`` for the account's subscription, in whole-month queries."""
        client = self.client_for(account, credentials)
        fetched = fetch_daily_costs(
            client,
            CostScope.subscription(account.provider_account_id),
            window,
            as_of=dt.datetime.now(dt.UTC).date(),
            month_close_day=self.month_close_day,
        )
        return FetchedCosts(
            parsed=fetched.parsed,
            # Query requests are not billed; the quota they consume is what to watch.
            paid_requests=0,
            requests=fetched.requests,
            quota_consumed=fetched.qpu_consumed,
            quota_unit=QPU_UNIT,
        )

    def planned_paid_requests(self, account: CloudAccount, windows: int) -> int:
        """The fewest QPU fetching ``windows`` windows costs: ActualCost and AmortizedCost, 1
        QPU each at least, and the ungrouped total when reconciling. Reserved before any call."""
        return windows * (3 if self.reconciles() else 2)

    def reconciles(self) -> bool:
        """Whether :meth:`provider_totals` queries (read at run time, not import)."""
        if self.reconcile_totals is not None:
            return self.reconcile_totals
        return FinopsConfig.from_env().reconcile_azure

    def provider_totals(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> ProviderTotals | None:
        """The subscription's own daily ActualCost total: one ungrouped query per query
        window, not billed; its requests and QPU are counted with the fetch's.

        Returns None when reconciliation is switched off (``FINOPS_RECONCILE_AZURE=0``).
        """
        if not self.reconciles():
            return None
        totals = fetch_daily_totals(
            self.client_for(account, credentials),
            CostScope.subscription(account.provider_account_id),
            window,
            as_of=dt.datetime.now(dt.UTC).date(),
            month_close_day=self.month_close_day,
        )
        return ProviderTotals(
            by_day=totals.by_day,
            paid_requests=0,
            estimated_days=totals.estimated_days,
            requests=totals.requests,
            quota_consumed=totals.qpu_consumed,
        )

    def fetch_recommendations(
        self, account: CloudAccount, credentials: Credentials
    ) -> FetchedRecommendations:
        """The subscription's Azure Advisor cost recommendations (right-sizing, shutdowns,
        reservations): not billed and no QPU, so 0 paid; every request is counted."""
        query_client = self.client_for(account, credentials)
        with query_client.advisor(account.provider_account_id) as advisor:
            return fetch_azure_recommendations(advisor)

    def planned_recommendation_requests(self, account: CloudAccount) -> int:
        """What a recommendations refresh reserves from the tenant's QPU budget: nothing, as
        Advisor consumes no Cost Management QPU."""
        return 0
