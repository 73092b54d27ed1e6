"""Sandbox recommendations, served to the real boto3 client on the same hook as cost data."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.insights.recommendations import StoredRecommendation, plan_refresh
from finops_pipeline.providers.aws.client import build_cost_explorer_client
from finops_pipeline.providers.aws.recommendations import (
    RIGHTSIZING_OPERATION,
    RIGHTSIZING_SOURCE,
    SAVINGS_PLANS_OPERATION,
    SAVINGS_PLANS_SOURCE,
    SavingsPlansQuery,
    fetch_aws_recommendations,
    fetch_pages,
    parse_rightsizing_pages,
    rightsizing_request,
)
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    Pull,
    SandboxGenerator,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.sandbox.catalogue import DEMO_TENANTS
from finops_pipeline.providers.aws.sandbox.recommendations import (
    DEFAULT_PAGE_SIZE,
    RecommendationsSandbox,
)
from finops_pipeline.providers.aws.sandbox.service import SandboxApiError
from finops_pipeline.providers.aws.spec import AWS

AS_OF = dt.date(2026, 6, 30)
PAYER, MEMBERS = "210000000001", ("210000000002", "210000000003")
STANDALONE = "320000000001"
DEMO_ACCOUNTS = [account.number for tenant in DEMO_TENANTS for account in tenant.accounts]


@pytest.fixture
def sandbox_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], Any]:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FINOPS_SANDBOX_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "0")
    monkeypatch.delenv("FINOPS_SANDBOX_THROTTLE_RATE", raising=False)
    reset_request_counts()

    def build(account: str) -> Any:
        return build_cost_explorer_client(
            sandbox_credentials(account),
            endpoint_url=SANDBOX_ENDPOINT_URL,
            client_hook=AWS.client_hook,
        )

    return build


def test_every_demo_account_gets_recommendations_and_each_request_is_counted(
    sandbox_client: Callable[[str], Any],
) -> None:
    fetched = {
        account: fetch_aws_recommendations(sandbox_client(account), account=account)
        for account in DEMO_ACCOUNTS
    }

    for account, result in fetched.items():
        assert result.records, account
        assert {record.source for record in result.records} <= {
            RIGHTSIZING_SOURCE,
            SAVINGS_PLANS_SOURCE,
        }
        assert any(record.source == SAVINGS_PLANS_SOURCE for record in result.records)
        assert all(record.account == account for record in result.records)
        assert all(record.estimated_monthly_savings > 0 for record in result.records)
        # One rightsizing page (up to 1,000 instances) and one Savings Plans page.
        assert result.paid_requests == 2
    counts = request_counts()
    assert counts.paid == sum(result.paid_requests for result in fetched.values())
    assert counts.by_account == {account: 2 for account in DEMO_ACCOUNTS}
    # A payer sees its members' instances, as Cost Explorer shows them to a management account.
    payer_instances = {
        record.raw["AccountId"]
        for record in fetched[PAYER].records
        if record.source == RIGHTSIZING_SOURCE
    }
    assert payer_instances == {PAYER, *MEMBERS}


def test_sandbox_pages_follow_page_size_and_every_page_is_paid(
    sandbox_client: Callable[[str], Any],
) -> None:
    client = sandbox_client(STANDALONE)
    whole = fetch_pages(
        client.get_rightsizing_recommendation,
        rightsizing_request(),
        operation=RIGHTSIZING_OPERATION,
    )
    reset_request_counts()

    paged = fetch_pages(
        client.get_rightsizing_recommendation,
        {**rightsizing_request(), "PageSize": 7},
        operation=RIGHTSIZING_OPERATION,
    )

    [page] = whole.pages
    total = len(page["RightsizingRecommendations"])
    assert total > 7
    assert int(page["Summary"]["TotalRecommendationCount"]) == total
    assert paged.paid_requests == len(paged.pages) == math.ceil(total / 7)
    assert request_counts().paid == paged.paid_requests
    assert parse_rightsizing_pages(paged.pages, account=STANDALONE) == parse_rightsizing_pages(
        whole.pages, account=STANDALONE
    )


def test_linked_scope_gives_one_savings_plan_per_member(
    sandbox_client: Callable[[str], Any],
) -> None:
    query = SavingsPlansQuery(account_scope="LINKED", term_in_years="THREE_YEARS")

    fetched = fetch_aws_recommendations(
        sandbox_client(PAYER), account=PAYER, rightsizing=False, savings_plans=[query]
    )

    assert sorted(record.raw["detail"]["AccountId"] for record in fetched.records) == sorted(
        [PAYER, *MEMBERS]
    )
    assert all(
        record.resource_id.startswith("COMPUTE_SP/THREE_YEARS/NO_UPFRONT/LINKED/")
        for record in fetched.records
    )


def test_an_invalid_request_is_refused_like_cost_explorer_does(
    sandbox_client: Callable[[str], Any],
) -> None:
    client = sandbox_client(STANDALONE)
    with pytest.raises(ProviderDataError, match="rejected the GetRightsizingRecommendation"):
        fetch_pages(
            client.get_rightsizing_recommendation,
            {**rightsizing_request(), "Service": "AmazonRDS"},
            operation=RIGHTSIZING_OPERATION,
        )
    assert request_counts().paid == 0


def test_the_same_week_gives_the_same_set_and_the_next_week_moves_some() -> None:
    sandbox = RecommendationsSandbox(SandboxGenerator())

    def records(as_of: dt.date) -> list[Any]:
        page = sandbox.rightsizing(rightsizing_request(), caller=STANDALONE, pull=Pull(as_of))
        return parse_rightsizing_pages([page], account=STANDALONE)

    first = records(AS_OF)
    assert records(AS_OF) == first
    assert [r.raw for r in records(AS_OF)] == [r.raw for r in first]

    seen = dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
    stored = [StoredRecommendation(record, seen, seen) for record in first]
    plan = plan_refresh(
        stored,
        records(AS_OF + dt.timedelta(days=7)),
        provider="aws",
        account=STANDALONE,
        seen_at=seen + dt.timedelta(days=7),
    )
    counts = plan.counts()
    assert counts["unchanged"] > counts["new"] > 0
    assert counts["updated"] > 0 and counts["resolved"] > 0


def test_savings_plan_figures_hang_together() -> None:
    sandbox = RecommendationsSandbox(SandboxGenerator())
    query = SavingsPlansQuery(payment_option="ALL_UPFRONT")

    response = sandbox.savings_plans(query.request(), caller=STANDALONE, pull=Pull(AS_OF))

    [detail] = response["SavingsPlansPurchaseRecommendation"][
        "SavingsPlansPurchaseRecommendationDetails"
    ]
    commitment = Decimal(detail["HourlyCommitmentToPurchase"])
    minimum = Decimal(detail["CurrentMinimumHourlyOnDemandSpend"])
    average = Decimal(detail["CurrentAverageHourlyOnDemandSpend"])
    assert (
        0 < commitment < minimum <= average <= Decimal(detail["CurrentMaximumHourlyOnDemandSpend"])
    )
    assert Decimal(detail["UpfrontCost"]) == pytest.approx(commitment * 8760, rel=Decimal("0.001"))
    monthly = Decimal(detail["EstimatedMonthlySavingsAmount"])
    lookback = Decimal(detail["EstimatedSavingsAmount"])
    assert monthly == pytest.approx(lookback * 730 / 720, rel=Decimal("0.001"))


@pytest.mark.parametrize("operation", [RIGHTSIZING_OPERATION, SAVINGS_PLANS_OPERATION])
def test_sandbox_responses_match_botocores_model(operation: str) -> None:
    # Stubber validates a response against the operation's output shape before accepting it.
    sandbox = RecommendationsSandbox(SandboxGenerator())
    body = (
        rightsizing_request()
        if operation == RIGHTSIZING_OPERATION
        else SavingsPlansQuery(
            savings_plans_type="EC2_INSTANCE_SP", account_scope="LINKED"
        ).request()
    )
    response = sandbox.answer(operation, {**body, "PageSize": 5}, caller=PAYER, pull=Pull(AS_OF))
    client = boto3.session.Session(
        aws_access_key_id="a",
        aws_secret_access_key="b",
        region_name="us-east-1",
        botocore_session=botocore.session.Session(),
    ).client("ce")
    method = {
        RIGHTSIZING_OPERATION: "get_rightsizing_recommendation",
        SAVINGS_PLANS_OPERATION: "get_savings_plans_purchase_recommendation",
    }[operation]

    Stubber(client).add_response(method, response)

    assert response["NextPageToken"]


def test_page_tokens_belong_to_their_request_and_pull() -> None:
    sandbox = RecommendationsSandbox(SandboxGenerator())
    body = {**rightsizing_request(), "PageSize": DEFAULT_PAGE_SIZE // 4}
    first = sandbox.rightsizing(body, caller=STANDALONE, pull=Pull(AS_OF))
    token = first["NextPageToken"]

    second = sandbox.rightsizing(
        {**body, "NextPageToken": token}, caller=STANDALONE, pull=Pull(AS_OF)
    )
    assert second["RightsizingRecommendations"] != first["RightsizingRecommendations"]
    for changed, pull in (
        ({**body, "PageSize": 6, "NextPageToken": token}, Pull(AS_OF)),
        ({**body, "NextPageToken": token}, Pull(AS_OF, generation=1)),
        ({**body, "NextPageToken": "garbage"}, Pull(AS_OF)),
    ):
        with pytest.raises(SandboxApiError) as refused:
            sandbox.rightsizing(changed, caller=STANDALONE, pull=pull)
        assert refused.value.code == "InvalidNextTokenException"
