"""The AWS Cost Explorer resource: the AWS implementation of the collector seam."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from finops_pipeline.config import FinopsConfig
from finops_pipeline.constants import PROVIDER_AWS
from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.providers import provider_spec
from finops_pipeline.providers.aws.anomalies import FetchedAnomalies, fetch_aws_anomalies
from finops_pipeline.providers.aws.client import client_config, cost_explorer_client
from finops_pipeline.providers.aws.constants import CE_MAX_ATTEMPTS, CE_TOTAL_METRIC
from finops_pipeline.providers.aws.credentials import AwsRoleCredentials
from finops_pipeline.providers.aws.organizations import (
    DiscoveredMembers,
    discover_linked_accounts,
)
from finops_pipeline.providers.aws.paging import fetch_all_pages
from finops_pipeline.providers.aws.parsing import CostPageParser, parse_total_pages
from finops_pipeline.providers.aws.recommendations import fetch_aws_recommendations
from finops_pipeline.providers.aws.request import (
    build_daily_cost_request,
    build_daily_total_request,
)
from finops_pipeline.providers.aws.roles import (
    DEFAULT_ROLE_SESSION_SECONDS,
    AwsSession,
    PipelinePrincipal,
    pipeline_principal,
    session_for,
)
from finops_pipeline.providers.base import FetchedCosts, ProviderTotals
from finops_pipeline.providers.recommenders import FetchedRecommendations
from finops_pipeline.security.credentials import Credentials
from finops_pipeline.sync.ranges import DateRange


class AwsCostExplorerResource(dg.ConfigurableResource):
    """Fetches daily costs from AWS Cost Explorer (GetCostAndUsage) for one account.

    Clients are built from the account's decrypted credentials only, never from the ambient
    environment. Every request and page is billed at $0.01 and counted.

    Role accounts are assumed by the pipeline's own principal, bound from
    ``dg.EnvVar("FINOPS_PIPELINE_AWS_ACCESS_KEY_ID")`` and
    ``dg.EnvVar("FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY")``; their session credentials refresh
    before they expire, and a fetch that meets an expired session restarts from page one.
    """

    provider: str = PROVIDER_AWS
    #: Every Cost Explorer request and page is one paid unit, counted against the budget.
    paid_request_unit: ClassVar[str] = "request"
    endpoint_url: str | None = Field(
        default=None,
        description="Override the Cost Explorer endpoint for every account (private endpoint "
        "or a local test double). An account's own endpoint_url takes precedence.",
    )
    retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard",
        description="botocore retry mode; both retry LimitExceededException, legacy does not.",
    )
    max_attempts: int = Field(default=CE_MAX_ATTEMPTS, ge=1, le=20)
    filter_linked_account: bool = Field(
        default=False,
        description="Filter every account on LINKED_ACCOUNT = its account number. Management "
        "accounts and their discovered members are filtered whatever this says.",
    )
    reconcile_totals: bool | None = Field(
        default=None,
        description="Ask Cost Explorer for its ungrouped daily total per account and window "
        "(one more paid request each), for the reconciliation check. None: "
        "FINOPS_RECONCILE_AWS, on unless set to 0.",
    )

    pipeline_access_key_id: str | None = Field(
        default=None,
        description="The pipeline's own access key id, used only for sts:AssumeRole; bind "
        "dg.EnvVar('FINOPS_PIPELINE_AWS_ACCESS_KEY_ID').",
    )
    pipeline_secret_access_key: str | None = Field(
        default=None,
        repr=False,
        description="Its secret; bind dg.EnvVar('FINOPS_PIPELINE_AWS_SECRET_ACCESS_KEY').",
    )
    pipeline_session_token: str | None = Field(
        default=None,
        repr=False,
        description="Its session token, if temporary; bind "
        "dg.EnvVar('FINOPS_PIPELINE_AWS_SESSION_TOKEN').",
    )
    sts_endpoint_url: str | None = Field(
        default=None, description="Override the STS endpoint (private endpoint or test double)."
    )
    role_session_seconds: int = Field(default=DEFAULT_ROLE_SESSION_SECONDS, ge=900, le=43200)

    # One role session per account for the life of the run, so an account's several date
    # ranges share one AssumeRole (botocore refreshes it as needed).
    _role_sessions: dict[tuple[str, str], AwsSession] = PrivateAttr(default_factory=dict)

    def principal(self) -> PipelinePrincipal | None:
        """The pipeline's own AWS principal, or None when none is configured."""
        return pipeline_principal(
            self.pipeline_access_key_id,
            self.pipeline_secret_access_key,
            self.pipeline_session_token,
            sts_endpoint_url=self.sts_endpoint_url,
        )

    def session_for(self, credentials: Credentials) -> AwsSession:
        """A session for an account: its access key, or its role assumed by the pipeline."""
        return session_for(
            credentials, self.principal(), duration_seconds=self.role_session_seconds
        )

    def client_for(self, account: CloudAccount, credentials: Credentials) -> Any:
        """A ``ce`` client for this account's credentials."""
        return self._client(account, self.session_for(credentials))

    def _session_for_account(self, account: CloudAccount, credentials: Credentials) -> AwsSession:
        if not isinstance(credentials, AwsRoleCredentials):
            return self.session_for(credentials)
        key = (account.id, credentials.role_arn)
        if key not in self._role_sessions:
            self._role_sessions[key] = self.session_for(credentials)
        return self._role_sessions[key]

    def _client(self, account: CloudAccount, session: AwsSession) -> Any:
        return cost_explorer_client(
            session.session,
            endpoint_url=account.endpoint_url or self.endpoint_url,
            config=client_config(max_attempts=self.max_attempts, retry_mode=self.retry_mode),
            # Sandbox accounts are answered in-process: the registry's hook, bound here.
            client_hook=provider_spec(self.provider).client_hook,
        )

    def fetch_daily_costs(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedCosts:
        """One paged DAILY query, grouped by SERVICE and USAGE_TYPE, for the whole window."""
        session = self._session_for_account(account, credentials)
        client = self._client(account, session)
        request = build_daily_cost_request(
            window.start, window.end, linked_account=self._linked_account(account)
        )
        # Each page is parsed as it arrives and dropped: a long window's raw JSON is never
        # held whole.
        parser = CostPageParser()
        paged = fetch_all_pages(
            client.get_cost_and_usage,
            request,
            on_expired_credentials=session.expire_credentials,
            consumer=parser,
        )
        return FetchedCosts(
            parsed=parser.result(),
            paid_requests=paged.paid_requests,
            data_unavailable=paged.data_unavailable,
            pagination_restarts=paged.restarts,
        )

    def _linked_account(self, account: CloudAccount) -> str | None:
        if self.filter_linked_account:
            return account.provider_account_id
        return account.linked_account_filter

    def planned_paid_requests(self, account: CloudAccount, windows: int) -> int:
        """The fewest paid requests fetching ``windows`` windows costs: a page each, and one
        ungrouped total each when reconciling. Counted against the budget before any call."""
        return windows * (2 if self.reconciles() else 1)

    def reconciles(self) -> bool:
        """Whether :meth:`provider_totals` asks Cost Explorer (read at run time, not import)."""
        if self.reconcile_totals is not None:
            return self.reconcile_totals
        return FinopsConfig.from_env().reconcile_aws

    def provider_totals(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> ProviderTotals | None:
        """Cost Explorer's own ungrouped total per day: one more paid request per window.

        Returns None when reconciliation is switched off (``FINOPS_RECONCILE_AWS=0``).
        """
        if not self.reconciles():
            return None
        session = self._session_for_account(account, credentials)
        client = self._client(account, session)
        paged = fetch_all_pages(
            client.get_cost_and_usage,
            build_daily_total_request(
                window.start, window.end, linked_account=self._linked_account(account)
            ),
            on_expired_credentials=session.expire_credentials,
        )
        if paged.data_unavailable:
            return None
        parsed = parse_total_pages(paged.pages, CE_TOTAL_METRIC)
        return ProviderTotals(
            by_day=parsed.by_day,
            paid_requests=paged.paid_requests,
            estimated_days=parsed.estimated_days,
        )

    def discover_members(
        self, account: CloudAccount, credentials: Credentials, *, today: dt.date
    ) -> DiscoveredMembers:
        """A management account's organisation: LINKED_ACCOUNT values, paid per page."""
        client = self._client(account, self._session_for_account(account, credentials))
        return discover_linked_accounts(client.get_dimension_values, today=today)

    def fetch_recommendations(
        self, account: CloudAccount, credentials: Credentials
    ) -> FetchedRecommendations:
        """The account's rightsizing and Savings Plans recommendations (paid, $0.01 a page)."""
        client = self._client(account, self._session_for_account(account, credentials))
        return fetch_aws_recommendations(client, account=account.provider_account_id)

    def fetch_provider_anomalies(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedAnomalies:
        """Cost Anomaly Detection's anomalies that started in ``window`` (paid, $0.01 a page)."""
        client = self._client(account, self._session_for_account(account, credentials))
        return fetch_aws_anomalies(client, start=window.start, end=window.end)
