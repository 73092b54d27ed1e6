"""AWS rightsizing and Savings Plans recommendations through a real boto3 client and Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from finops_pipeline.errors import (
    PaginationRestartError,
    ProviderAccessDeniedError,
    ProviderDataError,
    ProviderThrottledError,
)
from finops_pipeline.insights.recommendations import (
    KIND_COMMITMENT,
    KIND_RIGHTSIZE,
    KIND_TERMINATE,
)
from finops_pipeline.providers.aws.recommendations import (
    RIGHTSIZING_SOURCE,
    SAVINGS_PLANS_SOURCE,
    SavingsPlansQuery,
    fetch_aws_recommendations,
    fetch_pages,
    parse_rightsizing,
    rightsizing_request,
)
from tests.providers.aws import ce_recommendation_responses as responses

ACCOUNT = "123456789012"
SP_REQUEST = SavingsPlansQuery().request()


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    # One botocore session, so the ce model is loaded once for the module.
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-real-secret",
        region_name="us-east-1",
        botocore_session=botocore.session.Session(),
    )


@pytest.fixture
def ce(session: boto3.session.Session) -> Iterator[tuple[Any, Stubber]]:
    client = session.client("ce")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect_rightsizing(stubber: Stubber, page: dict, token: str | None = None) -> None:
    params = rightsizing_request()
    if token:
        params["NextPageToken"] = token
    stubber.add_response("get_rightsizing_recommendation", page, params)


def expect_savings_plans(
    stubber: Stubber, page: dict, token: str | None = None, request: dict | None = None
) -> None:
    params = dict(request or SP_REQUEST)
    if token:
        params["NextPageToken"] = token
    stubber.add_response("get_savings_plans_purchase_recommendation", page, params)


def test_rightsizing_and_savings_plans_become_normalised_records(
    ce: tuple[Any, Stubber],
) -> None:
    client, stubber = ce
    expect_rightsizing(
        stubber,
        responses.rightsizing_page(
            [
                responses.modify("i-0a1b2c3d4e5f60718", name="web-1"),
                responses.terminate("i-0fedcba9876543210", "70.08"),
            ]
        ),
    )
    expect_savings_plans(stubber, responses.savings_plans_page([responses.plan_detail("190.10")]))

    fetched = fetch_aws_recommendations(client, account=ACCOUNT)

    modify, stop, plan = fetched.records
    assert (modify.provider, modify.account, modify.source) == ("aws", ACCOUNT, RIGHTSIZING_SOURCE)
    assert modify.kind == KIND_RIGHTSIZE
    assert modify.resource_id == "i-0a1b2c3d4e5f60718"
    assert modify.current == "m5.xlarge, US East (N. Virginia) (web-1)"
    assert modify.recommended == "m5.large"
    assert modify.estimated_monthly_savings == Decimal("70.08")
    assert modify.currency == "USD"
    assert (
        modify.raw["CurrentInstance"]["ResourceUtilization"]["EC2ResourceUtilization"][
            "MaxCpuUtilizationPercentage"
        ]
        == "9.5"
    )
    assert (stop.kind, stop.recommended, stop.estimated_monthly_savings) == (
        KIND_TERMINATE,
        "terminate",
        Decimal("70.08"),
    )
    assert plan.source == SAVINGS_PLANS_SOURCE and plan.kind == KIND_COMMITMENT
    assert plan.resource_id == "COMPUTE_SP/ONE_YEAR/NO_UPFRONT/PAYER"
    assert plan.current == "on-demand, 1.94 USD/hour on average"
    assert plan.recommended == "Compute Savings Plan, 1 year, no upfront: commit 1.25 USD/hour"
    assert plan.estimated_monthly_savings == Decimal("190.10")
    assert plan.raw["detail"]["RecommendationDetailId"]
    assert "SavingsPlansPurchaseRecommendationDetails" not in plan.raw["recommendation"]
    assert fetched.paid_requests == 2
    assert fetched.request_cost_usd == Decimal("0.02")
    assert fetched.notes == []


def test_every_page_is_fetched_with_the_identical_request_and_counted_as_paid(
    ce: tuple[Any, Stubber],
) -> None:
    client, stubber = ce
    expect_rightsizing(stubber, responses.rightsizing_page([responses.modify("i-1")], token="r2"))
    expect_rightsizing(
        stubber, responses.rightsizing_page([responses.modify("i-2")], token="r3"), token="r2"
    )
    expect_rightsizing(stubber, responses.rightsizing_page([responses.modify("i-3")]), token="r3")
    expect_savings_plans(
        stubber,
        responses.savings_plans_page(
            [responses.plan_detail("50", account="111111111111")], scope="LINKED", token="s2"
        ),
    )
    expect_savings_plans(
        stubber,
        responses.savings_plans_page(
            [responses.plan_detail("40", account="222222222222")], scope="LINKED"
        ),
        token="s2",
    )

    fetched = fetch_aws_recommendations(client, account=ACCOUNT)

    assert [record.resource_id for record in fetched.records] == [
        "i-1",
        "i-2",
        "i-3",
        "COMPUTE_SP/ONE_YEAR/NO_UPFRONT/LINKED/111111111111",
        "COMPUTE_SP/ONE_YEAR/NO_UPFRONT/LINKED/222222222222",
    ]
    assert fetched.paid_requests == 5  # three rightsizing pages, two Savings Plans pages
    assert fetched.request_cost_usd == Decimal("0.05")


def test_each_savings_plans_query_is_its_own_paid_request(ce: tuple[Any, Stubber]) -> None:
    client, stubber = ce
    instance_sp = SavingsPlansQuery(
        savings_plans_type="EC2_INSTANCE_SP", term_in_years="THREE_YEARS"
    )
    expect_savings_plans(stubber, responses.savings_plans_page([]))
    expect_savings_plans(
        stubber,
        responses.savings_plans_page(
            [
                responses.plan_detail("300", region="US East (N. Virginia)", family="m5"),
                responses.plan_detail("120", region="EU (Frankfurt)", family="c6g"),
            ],
            plan_type="EC2_INSTANCE_SP",
            term="THREE_YEARS",
        ),
        request=instance_sp.request(),
    )

    fetched = fetch_aws_recommendations(
        client, account=ACCOUNT, rightsizing=False, savings_plans=[SavingsPlansQuery(), instance_sp]
    )

    assert [record.resource_id for record in fetched.records] == [
        "EC2_INSTANCE_SP/THREE_YEARS/NO_UPFRONT/PAYER/US East (N. Virginia)/m5",
        "EC2_INSTANCE_SP/THREE_YEARS/NO_UPFRONT/PAYER/EU (Frankfurt)/c6g",
    ]
    assert fetched.records[0].recommended == (
        "EC2 Instance Savings Plan (m5, US East (N. Virginia)), 3 years, no upfront: "
        "commit 1.25 USD/hour"
    )
    assert fetched.paid_requests == 2  # the empty answer was billed too


def test_a_rejected_page_token_restarts_from_the_first_page(ce: tuple[Any, Stubber]) -> None:
    client, stubber = ce
    expect_rightsizing(stubber, responses.rightsizing_page([responses.modify("i-1")], token="old"))
    stubber.add_client_error(
        "get_rightsizing_recommendation",
        service_error_code="InvalidNextTokenException",
        service_message="The token is invalid",
        expected_params={**rightsizing_request(), "NextPageToken": "old"},
    )
    expect_rightsizing(stubber, responses.rightsizing_page([responses.modify("i-1")], token="new"))
    expect_rightsizing(stubber, responses.rightsizing_page([responses.modify("i-2")]), token="new")

    paged = fetch_pages(
        client.get_rightsizing_recommendation,
        rightsizing_request(),
        operation="GetRightsizingRecommendation",
    )

    resources = [
        item["CurrentInstance"]["ResourceId"]
        for page in paged.pages
        for item in page["RightsizingRecommendations"]
    ]
    assert resources == ["i-1", "i-2"]  # no page from the abandoned sequence
    assert paged.restarts == 1
    assert paged.paid_requests == 3  # the abandoned first page was billed; the failure was not


def test_paging_that_keeps_failing_gives_up(ce: tuple[Any, Stubber]) -> None:
    client, stubber = ce
    for _ in range(2):
        expect_rightsizing(stubber, responses.rightsizing_page([], token="t"))
        stubber.add_client_error(
            "get_rightsizing_recommendation", service_error_code="InvalidNextTokenException"
        )
    with pytest.raises(PaginationRestartError, match="failed 2 times"):
        fetch_pages(
            client.get_rightsizing_recommendation,
            rightsizing_request(),
            operation="GetRightsizingRecommendation",
            max_restarts=1,
        )


def test_a_repeated_page_token_stops_the_loop(ce: tuple[Any, Stubber]) -> None:
    client, stubber = ce
    expect_savings_plans(stubber, responses.savings_plans_page([], token="same"))
    expect_savings_plans(stubber, responses.savings_plans_page([], token="same"), token="same")

    with pytest.raises(ProviderDataError, match="already returned"):
        fetch_aws_recommendations(client, account=ACCOUNT, rightsizing=False)


def test_rightsizing_not_enabled_is_a_note_and_savings_plans_still_arrive(
    ce: tuple[Any, Stubber],
) -> None:
    client, stubber = ce
    stubber.add_client_error(
        "get_rightsizing_recommendation",
        service_error_code="AccessDeniedException",
        service_message=(
            "Rightsizing EC2 recommendation is an opt-in only feature. You can enable this "
            "feature from the PAYER account's Cost Explorer Preferences page."
        ),
        http_status_code=400,
    )
    expect_savings_plans(stubber, responses.savings_plans_page([responses.plan_detail("10")]))

    fetched = fetch_aws_recommendations(client, account=ACCOUNT)

    assert [record.source for record in fetched.records] == [SAVINGS_PLANS_SOURCE]
    assert fetched.paid_requests == 1  # the refused request is not billed
    assert fetched.notes == [
        "EC2 rightsizing recommendations are not enabled for this account's organisation; "
        "enable them in the payer account's Cost Explorer preferences."
    ]


@pytest.mark.parametrize(
    ("code", "status", "error", "message"),
    [
        (
            "AccessDeniedException",
            400,
            ProviderAccessDeniedError,
            "Grant ce:GetRightsizingRecommendation",
        ),
        ("UnrecognizedClientException", 400, ProviderAccessDeniedError, "AWS denied"),
        ("LimitExceededException", 400, ProviderThrottledError, "kept throttling"),
        ("ValidationException", 400, ProviderDataError, "rejected the GetRightsizing"),
    ],
)
def test_provider_errors_are_typed_and_say_what_to_do(
    ce: tuple[Any, Stubber], code: str, status: int, error: type[Exception], message: str
) -> None:
    client, stubber = ce
    stubber.add_client_error(
        "get_rightsizing_recommendation",
        service_error_code=code,
        service_message="User: arn:aws:sts::123456789012:assumed-role/x is not authorized",
        http_status_code=status,
    )

    with pytest.raises(error, match=message) as raised:
        fetch_aws_recommendations(client, account=ACCOUNT)

    assert "arn:aws" not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_savings_plans_access_denied_names_its_permission(ce: tuple[Any, Stubber]) -> None:
    client, stubber = ce
    stubber.add_client_error(
        "get_savings_plans_purchase_recommendation", service_error_code="AccessDeniedException"
    )
    with pytest.raises(ProviderAccessDeniedError, match="ce:GetSavingsPlansPurchaseRecommendation"):
        fetch_aws_recommendations(client, account=ACCOUNT, rightsizing=False)


def test_without_a_default_target_the_largest_saving_is_chosen() -> None:
    item = responses.modify(
        "i-1",
        targets=[
            responses.target("m5.large", "70.08", "70.08", default=False),
            responses.target("t3.large", "60.74", "79.42", default=False),
        ],
    )
    assert parse_rightsizing(item, account=ACCOUNT).recommended == "t3.large"
    item["ModifyRecommendationDetail"]["TargetInstances"][0]["DefaultTargetInstance"] = True
    assert parse_rightsizing(item, account=ACCOUNT).recommended == "m5.large"


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda item: item["CurrentInstance"].pop("ResourceId"), "without a resource id"),
        (
            lambda item: item["ModifyRecommendationDetail"]["TargetInstances"][0].update(
                EstimatedMonthlySavings="n/a"
            ),
            "no valid monthly savings for i-1",
        ),
        (
            lambda item: item["ModifyRecommendationDetail"].update(TargetInstances=[]),
            "without a target",
        ),
        (lambda item: item.update(RightsizingType="UPSIZE"), "expected MODIFY or TERMINATE"),
        (
            lambda item: (
                item["ModifyRecommendationDetail"]["TargetInstances"][0].pop("CurrencyCode"),
                item["CurrentInstance"].pop("CurrencyCode"),
            ),
            "no currency for i-1",
        ),
    ],
)
def test_malformed_rightsizing_is_a_typed_error(break_it: Any, message: str) -> None:
    item = responses.modify("i-1")
    break_it(item)
    with pytest.raises(ProviderDataError, match=message):
        parse_rightsizing(item, account=ACCOUNT)
