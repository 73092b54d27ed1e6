"""The AWS Cost Explorer resource: the AWS implementation of the collector seam."""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from finops_pipeline.cost_explorer.client import build_cost_explorer_client, client_config
from finops_pipeline.cost_explorer.paging import fetch_all_pages
from finops_pipeline.cost_explorer.parsing import parse_cost_pages
from finops_pipeline.cost_explorer.request import build_daily_cost_request
from finops_pipeline.credentials import AwsAccessKeyCredentials, Credentials
from finops_pipeline.db.accounts import CloudAccount
from finops_pipeline.errors import CredentialError
from finops_pipeline.partition_keys import DateRange
from finops_pipeline.providers import FetchedCosts
from finops_pipeline.settings import CE_MAX_ATTEMPTS, PROVIDER_AWS


class AwsCostExplorerResource(dg.ConfigurableResource):
    """Fetches daily costs from AWS Cost Explorer (GetCostAndUsage) for one account.

    Clients are built from the account's decrypted credentials only, never from the ambient
    environment. Every request and page is billed at $0.01 and counted.
    """

    provider: str = PROVIDER_AWS
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
        description="Filter on LINKED_ACCOUNT = the account number, for payer credentials "
        "shared by member accounts.",
    )

    def client_for(self, account: CloudAccount, credentials: Credentials) -> Any:
        """A ``ce`` client for this account's credentials."""
        if not isinstance(credentials, AwsAccessKeyCredentials):
            raise CredentialError(
                f"Account {account.id} uses {type(credentials).__name__}, which this release "
                "cannot use for Cost Explorer yet; register access keys instead."
            )
        return build_cost_explorer_client(
            credentials,
            endpoint_url=account.endpoint_url or self.endpoint_url,
            config=client_config(max_attempts=self.max_attempts, retry_mode=self.retry_mode),
        )

    def fetch_daily_costs(
        self, account: CloudAccount, credentials: Credentials, window: DateRange
    ) -> FetchedCosts:
        """One paged DAILY query, grouped by SERVICE and USAGE_TYPE, for the whole window."""
        client = self.client_for(account, credentials)
        request = build_daily_cost_request(
            window.start,
            window.end,
            linked_account=account.provider_account_id if self.filter_linked_account else None,
        )
        paged = fetch_all_pages(client.get_cost_and_usage, request)
        return FetchedCosts(
            parsed=parse_cost_pages(paged.pages),
            paid_requests=paged.paid_requests,
            data_unavailable=paged.data_unavailable,
            pagination_restarts=paged.restarts,
        )
