"""The synthetic tenant itself: deterministic values, and a Query endpoint as strict as Azure's."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from finops_pipeline.providers.aws.sandbox.generator import Pull
from finops_pipeline.providers.azure.query import CostType, build_query_body, encode_query_body
from finops_pipeline.providers.azure.sandbox import (
    SANDBOX_AUTHORITY_HOST,
    SANDBOX_RESOURCE_MANAGER,
    AzureCostManagementSandbox,
    AzureSandboxGenerator,
    AzureSandboxSettings,
    sandbox_credentials,
)
from finops_pipeline.providers.azure.sandbox.catalogue import SERVICES
from finops_pipeline.sync.ranges import DateRange
from tests.providers.azure.conftest import AS_OF, PRODUCTION, TENANT

JANUARY = DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 31))
QUERY_URL = (
    f"{SANDBOX_RESOURCE_MANAGER}/subscriptions/{PRODUCTION.subscription_id}"
    "/providers/Microsoft.CostManagement/query?api-version=2025-03-01"
)


def token(sandbox: AzureCostManagementSandbox, audience: str = SANDBOX_RESOURCE_MANAGER) -> str:
    secret = sandbox_credentials(TENANT).client_secret.reveal()
    form = urlencode(
        {
            "client_id": TENANT.client_id,
            "client_secret": secret,
            "grant_type": "client_credentials",
            "scope": f"{audience}/.default",
        }
    )
    answer = sandbox.handle(
        "POST", f"{SANDBOX_AUTHORITY_HOST}/{TENANT.tenant_id}/oauth2/v2.0/token", {}, form
    )
    assert answer.status == 200, answer.text
    return json.loads(answer.body)["access_token"]


def query(
    sandbox: AzureCostManagementSandbox,
    body: dict,
    *,
    bearer: str | None = None,
    url: str = QUERY_URL,
):
    headers = {"Authorization": f"Bearer {bearer or token(sandbox)}"}
    return sandbox.handle("POST", url, headers, json.dumps(body).encode())


@pytest.fixture
def sandbox() -> AzureCostManagementSandbox:
    return AzureCostManagementSandbox(AzureSandboxSettings(as_of=AS_OF))


def test_values_are_a_pure_function_of_seed_subscription_day_and_pull() -> None:
    pull = Pull(as_of=AS_OF, generation=0)
    day = dt.date(2025, 1, 14)
    first = AzureSandboxGenerator(seed=7).day_rows(PRODUCTION.subscription_id, day, pull)
    again = AzureSandboxGenerator(seed=7).day_rows(PRODUCTION.subscription_id, day, pull)
    other_seed = AzureSandboxGenerator(seed=8).day_rows(PRODUCTION.subscription_id, day, pull)

    assert first == again
    assert first != other_seed
    assert {row.service for row in first} <= {service.name for service in SERVICES}


def test_weekends_cost_less_and_nothing_exists_after_today() -> None:
    generator = AzureSandboxGenerator()
    pull = Pull(as_of=AS_OF, generation=0)
    totals = {
        day: sum(
            row.actual or 0 for row in generator.day_rows(PRODUCTION.subscription_id, day, pull)
        )
        for day in (dt.date(2024, 11, 1) + dt.timedelta(days=n) for n in range(56))
    }
    weekday = [total for day, total in totals.items() if day.weekday() < 5]
    weekend = [total for day, total in totals.items() if day.weekday() >= 5]
    assert sum(weekend) / len(weekend) < Decimal("0.95") * sum(weekday) / len(weekday)
    assert generator.day_rows(PRODUCTION.subscription_id, AS_OF + dt.timedelta(days=1), pull) == ()


def test_the_sandbox_answers_a_query_with_exact_json_numbers(sandbox) -> None:
    answer = query(sandbox, build_query_body(CostType.ACTUAL, JANUARY))

    assert answer.status == 200
    assert answer.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-consumed"] == "1"
    document = json.loads(answer.body, parse_float=Decimal)
    properties = document["properties"]
    assert [c["name"] for c in properties["columns"]] == [
        "Cost",
        "UsageQuantity",
        "UsageDate",
        "ServiceName",
        "Meter",
        "Currency",
    ]
    assert properties["nextLink"] is None
    assert all(len(str(row[0]).split(".")[1]) == 18 for row in properties["rows"][:20])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b["dataset"].update(grouping=b["dataset"]["grouping"] * 2), "up to 2 group by"),
        (lambda b: b["dataset"].update(granularity="Monthly"), "Daily granularity"),
        (lambda b: b.update(timeframe="MonthToDate"), "timeframe Custom"),
        (
            lambda b: b.update(
                timePeriod={"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T23:59:59Z"}
            ),
            "at most one month",
        ),
        (
            lambda b: b["dataset"]["aggregation"].update(x={"name": "Cost", "function": "Avg"}),
            "one or two aggregations",
        ),
    ],
)
def test_bodies_azure_would_refuse_are_refused(sandbox, change, reason: str) -> None:
    body = build_query_body(CostType.ACTUAL, JANUARY)
    change(body)
    answer = query(sandbox, body)
    assert answer.status == 400
    assert reason in json.loads(answer.body)["error"]["message"]


def test_top_pages_the_rows_and_the_skiptoken_is_bound_to_the_body(sandbox) -> None:
    body = build_query_body(CostType.ACTUAL, JANUARY)
    bearer = token(sandbox)
    first = query(sandbox, body, bearer=bearer, url=f"{QUERY_URL}&$top=50")
    properties = json.loads(first.body)["properties"]
    assert len(properties["rows"]) == 50
    link = properties["nextLink"]
    assert link.startswith(SANDBOX_RESOURCE_MANAGER) and "$top=50" in link

    second = query(sandbox, body, bearer=bearer, url=link)
    assert second.status == 200
    assert json.loads(second.body)["properties"]["rows"][0] != properties["rows"][0]

    changed = build_query_body(CostType.AMORTIZED, JANUARY)
    assert query(sandbox, changed, bearer=bearer, url=link).status == 400


def test_tokens_are_checked_for_signature_and_audience(sandbox) -> None:
    body = build_query_body(CostType.ACTUAL, JANUARY)
    assert query(sandbox, body, bearer="sbx.forged.token").status == 401
    other_cloud = token(sandbox, audience="https://management.usgovcloudapi.net")
    refused = query(sandbox, body, bearer=other_cloud)
    assert refused.status == 401
    assert json.loads(refused.body)["error"]["code"] == "InvalidAuthenticationTokenAudience"
    no_header = sandbox.handle("POST", QUERY_URL, {}, encode_query_body(body))
    assert no_header.status == 401


def test_entra_id_refuses_a_wrong_secret_and_an_unknown_tenant(sandbox) -> None:
    form = urlencode(
        {
            "client_id": TENANT.client_id,
            "client_secret": "wrong",
            "grant_type": "client_credentials",
            "scope": f"{SANDBOX_RESOURCE_MANAGER}/.default",
        }
    )
    wrong = sandbox.handle(
        "POST", f"{SANDBOX_AUTHORITY_HOST}/{TENANT.tenant_id}/oauth2/v2.0/token", {}, form
    )
    assert wrong.status == 401 and "AADSTS7000215" in wrong.text
    unknown = sandbox.handle(
        "GET",
        f"{SANDBOX_AUTHORITY_HOST}/00000000-0000-0000-0000-000000000000/v2.0/.well-known/"
        "openid-configuration",
        {},
        None,
    )
    assert unknown.status == 400 and "AADSTS90002" in unknown.text


def test_throttled_answers_carry_every_retry_after_header() -> None:
    sandbox = AzureCostManagementSandbox(AzureSandboxSettings(as_of=AS_OF, throttle_rate=1.0))
    answer = query(sandbox, build_query_body(CostType.ACTUAL, JANUARY))
    assert answer.status == 429
    prefix = "x-ms-ratelimit-microsoft.costmanagement-"
    assert {name: answer.headers[name] for name in answer.headers if name.startswith(prefix)} == {
        f"{prefix}qpu-retry-after": "2",
        f"{prefix}entity-retry-after": "7",
        f"{prefix}tenant-retry-after": "4",
    }
