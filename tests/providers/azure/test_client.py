"""The real azure-identity and azure-mgmt-costmanagement clients against the sandbox tenant.

Only the transport is in-process (azure-core's RequestsTransport with an in-process adapter):
token discovery and issue, the SDK's query operation, send_request, retry, authentication and
our two policies all run as they would against Azure.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from collections import Counter
from decimal import Decimal

import pandas as pd
import pytest

from finops_pipeline.errors import ProviderError
from finops_pipeline.providers.aws.sandbox.generator import Pull
from finops_pipeline.providers.azure.client import (
    AzureClientSecretCredentials,
    AzureEndpoints,
    ClientOptions,
    CostManagementQueryClient,
    error_for_status,
)
from finops_pipeline.providers.azure.collector import collect_range, fetch_daily_costs
from finops_pipeline.providers.azure.errors import (
    AzureAccessDeniedError,
    AzureAuthenticationError,
    AzureConfigurationError,
    AzureNetworkError,
    AzureQueryRejectedError,
    AzureScopeNotFoundError,
    AzureThrottledError,
    AzureUnsafeLinkError,
)
from finops_pipeline.providers.azure.paging import RawResponse
from finops_pipeline.providers.azure.query import CostScope, split_query_windows
from finops_pipeline.providers.azure.sandbox import (
    AzureCostManagementSandbox,
    AzureSandboxTransport,
    InProcessTransport,
    SandboxResponse,
    sandbox_credentials,
)
from finops_pipeline.security.credentials import Secret
from finops_pipeline.sync.ranges import DateRange
from tests.providers.azure.conftest import (
    AS_OF,
    NO_READER,
    PRODUCTION,
    SANDBOX_ENDPOINTS,
    TENANT,
    ClientFactory,
    SleepRecorder,
)

THIRTEEN_MONTHS = DateRange(dt.date(2024, 1, 1), dt.date(2025, 1, 31))
WINTER = DateRange(dt.date(2025, 1, 1), dt.date(2025, 3, 2))


def frame_by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["date", "service", "usage_type"]).reset_index(drop=True)


def minimum_requests(sandbox: AzureCostManagementSandbox, page_size: int) -> int:
    """One request per page the data needs: every query's rows over the page size, at least 1."""
    return sum(max(1, math.ceil(rows / page_size)) for rows in sandbox.counts.rows_by_query)


# --- the 13-month range ------------------------------------------------------------------


def test_thirteen_months_through_the_real_sdk_take_the_minimum_requests(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    sandbox = make_sandbox()
    client = make_client(sandbox)

    fetched = fetch_daily_costs(client, production_scope, THIRTEEN_MONTHS, as_of=AS_OF)

    # 13 calendar months, each queried once as ActualCost and once as AmortizedCost.
    assert len(fetched.collected.windows) == 13
    assert fetched.collected.queries == 26 == sandbox.counts.queries
    periods = [json.loads(body)["timePeriod"] for body in sandbox.seen_bodies]
    assert sorted({(p["from"], p["to"]) for p in periods}) == sorted(
        (f"{w.start}T00:00:00Z", f"{w.end}T23:59:59Z") for w in split_query_windows(THIRTEEN_MONTHS)
    )
    # Every request was needed: one per page of each query, nothing repeated or wasted.
    arm_requests = sandbox.counts.requests - sandbox.counts.identity_requests
    assert fetched.requests == arm_requests == minimum_requests(sandbox, 5000) == 26
    assert fetched.qpu_consumed == Decimal(sandbox.counts.qpu_consumed) == Decimal(26)
    assert fetched.throttled_requests == 0
    assert sandbox.counts.token_requests == 1  # one token, cached for the whole range
    frame = fetched.parsed.frame
    assert frame["date"].min() == THIRTEEN_MONTHS.start
    assert frame["date"].max() == THIRTEEN_MONTHS.end
    assert len(fetched.parsed.estimated_by_day) == THIRTEEN_MONTHS.days


def test_small_pages_follow_next_links_with_the_identical_body_and_lose_nothing(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    whole = make_sandbox()
    paged = make_sandbox(page_size=170)

    expected = fetch_daily_costs(make_client(whole), production_scope, WINTER, as_of=AS_OF)
    fetched = fetch_daily_costs(make_client(paged), production_scope, WINTER, as_of=AS_OF)

    pages_per_query = [math.ceil(rows / 170) for rows in paged.counts.rows_by_query]
    assert max(pages_per_query) > 1
    assert fetched.requests == sum(pages_per_query) == minimum_requests(paged, 170)
    # Each distinct body was POSTed once per page of its query, byte for byte.
    assert sorted(Counter(paged.seen_bodies).values()) == sorted(pages_per_query)
    pd.testing.assert_frame_equal(
        frame_by_key(fetched.parsed.frame), frame_by_key(expected.parsed.frame)
    )


def test_a_changed_body_on_a_next_link_is_refused(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    sandbox = make_sandbox(page_size=100)
    client = make_client(sandbox)

    class ChangingBody:
        def first_page(self, scope: CostScope, body: bytes) -> RawResponse:
            return client.first_page(scope, body)

        def next_page(self, link: str, body: bytes) -> RawResponse:
            return client.next_page(
                link, body.replace(b'"type":"ActualCost"', b'"type":"AmortizedCost"')
            )

    with pytest.raises(AzureQueryRejectedError, match="400 BadRequest"):
        collect_range(ChangingBody(), production_scope, WINTER, as_of=AS_OF)
    assert sandbox.counts.rejections == [
        "The request body of a nextLink must be identical to the query that returned it."
    ]


def test_amounts_arrive_exactly_as_the_tenant_generated_them(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    sandbox = make_sandbox()
    fetched = fetch_daily_costs(make_client(sandbox), production_scope, WINTER, as_of=AS_OF)
    pull = Pull(as_of=AS_OF, generation=0)

    expected: dict[tuple[dt.date, str, str], tuple[Decimal | None, Decimal | None]] = {}
    for offset in range(WINTER.days):
        day = WINTER.start + dt.timedelta(days=offset)
        for row in sandbox.generator.day_rows(PRODUCTION.subscription_id, day, pull):
            expected[(day, row.service, row.meter)] = (row.actual, row.amortized)

    frame = fetched.parsed.frame
    assert len(frame) == len(expected)
    lost_through_float = 0
    for row in frame.itertuples():
        actual, amortized = expected[(row.date, row.service, row.usage_type)]
        assert row.unblended_cost == (actual if actual is not None else Decimal(0))
        assert row.amortized_cost == (amortized if amortized is not None else Decimal(0))
        assert row.unblended_cost.as_tuple().exponent in (-18, 0)
        lost_through_float += Decimal(repr(float(row.amortized_cost))) != row.amortized_cost
    # At 18 decimal places nearly every amount would have changed had it passed through float.
    assert lost_through_float > 0.9 * len(frame)


def test_a_reservation_purchase_exists_only_as_actual_cost(
    make_sandbox, make_client: ClientFactory
) -> None:
    sandbox = make_sandbox()
    subscription = next(
        s
        for s in TENANT.subscriptions
        if s.reader and sandbox.generator.profile(s.subscription_id).reservation is not None
    )
    reservation = sandbox.generator.profile(subscription.subscription_id).reservation
    assert reservation is not None
    month = DateRange(max(reservation.start, dt.date(2024, 6, 1)), dt.date(2025, 2, 28))
    fetched = fetch_daily_costs(
        make_client(sandbox),
        CostScope.subscription(subscription.subscription_id),
        month,
        as_of=AS_OF,
    )

    purchases = fetched.parsed.frame[
        fetched.parsed.frame["usage_type"] == "Reserved VM Instance, 1 Year"
    ]
    assert len(purchases) > 0
    assert set(purchases["date"].map(lambda d: d.day)) == {1}
    assert (purchases["unblended_cost"] > 0).all()
    assert (purchases["amortized_cost"] == 0).all()


# --- throttling end to end -----------------------------------------------------------------


def test_throttled_requests_wait_for_the_largest_header_and_lose_nothing(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope, sleeps: SleepRecorder
) -> None:
    calm = make_sandbox()
    busy = make_sandbox(throttle_rate=0.35)

    expected = fetch_daily_costs(make_client(calm), production_scope, WINTER, as_of=AS_OF)
    fetched = fetch_daily_costs(make_client(busy), production_scope, WINTER, as_of=AS_OF)

    assert busy.counts.throttled > 0
    assert fetched.throttled_requests == busy.counts.throttled == len(sleeps.waits)
    assert set(sleeps.waits) == {7.0}  # the entity header's wait, the largest of the three
    assert fetched.requests == minimum_requests(busy, 5000) + busy.counts.throttled
    assert fetched.seconds_waited == 7.0 * busy.counts.throttled
    pd.testing.assert_frame_equal(
        frame_by_key(fetched.parsed.frame), frame_by_key(expected.parsed.frame)
    )


def test_throttling_beyond_the_bound_is_a_transient_typed_error(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope, sleeps: SleepRecorder
) -> None:
    sandbox = make_sandbox(
        throttle_rate=1.0,
        throttle_waits={"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": 600},
    )

    with pytest.raises(AzureThrottledError) as raised:
        fetch_daily_costs(make_client(sandbox), production_scope, WINTER, as_of=AS_OF)

    assert raised.value.permanent is False
    assert sleeps.waits == []


# --- restatement and estimation ------------------------------------------------------------


def test_open_months_are_restated_between_pulls_and_closed_ones_are_not(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    sandbox = make_sandbox()
    first = fetch_daily_costs(make_client(sandbox), production_scope, WINTER, as_of=AS_OF)
    sandbox.advance_generation()
    second = fetch_daily_costs(make_client(sandbox), production_scope, WINTER, as_of=AS_OF)

    before = frame_by_key(first.parsed.frame).set_index(["date", "service", "usage_type"])
    after = frame_by_key(second.parsed.frame).set_index(["date", "service", "usage_type"])
    january = before.index.get_level_values("date") < dt.date(2025, 2, 1)
    assert before[january].equals(after[january])
    changed = before["unblended_cost"] != after["unblended_cost"]
    assert changed[~january].mean() > 0.9
    # January closed on February 5th; February stays open until March 5th.
    assert not before[january]["is_estimated"].any()
    assert before[~january]["is_estimated"].all()
    assert first.parsed.estimated_by_day[dt.date(2025, 1, 31)] is False
    assert first.parsed.estimated_by_day[dt.date(2025, 2, 1)] is True


def test_a_window_with_no_data_yet_is_a_204_and_no_rows(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    sandbox = make_sandbox()
    future = DateRange(AS_OF + dt.timedelta(days=1), AS_OF + dt.timedelta(days=5))

    fetched = fetch_daily_costs(make_client(sandbox), production_scope, future, as_of=AS_OF)

    assert sandbox.counts.by_status[204] == 2
    assert fetched.parsed.frame.empty
    assert set(fetched.parsed.estimated_by_day.values()) == {True}


def test_columns_in_a_shuffled_order_through_the_sdk_give_the_same_rows(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    month = DateRange(dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    plain = fetch_daily_costs(make_client(make_sandbox()), production_scope, month, as_of=AS_OF)
    shuffled_sandbox = make_sandbox(shuffle_columns=True)
    shuffled = fetch_daily_costs(
        make_client(shuffled_sandbox), production_scope, month, as_of=AS_OF
    )

    pd.testing.assert_frame_equal(
        frame_by_key(shuffled.parsed.frame), frame_by_key(plain.parsed.frame)
    )


# --- typed errors ----------------------------------------------------------------------------


def assert_one_clean_line(error: ProviderError, *secrets: str) -> None:
    message = str(error)
    assert "\n" not in message
    for secret in secrets:
        assert secret not in message
    assert error.__cause__ is None and error.__suppress_context__


def test_a_wrong_client_secret_is_a_permanent_authentication_error(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    sandbox = make_sandbox()
    wrong = AzureClientSecretCredentials(
        TENANT.tenant_id, TENANT.client_id, Secret("not-the-secret-value-1234")
    )

    with pytest.raises(AzureAuthenticationError) as raised:
        fetch_daily_costs(
            make_client(sandbox, credentials=wrong), production_scope, WINTER, as_of=AS_OF
        )

    assert raised.value.permanent is True
    assert "AADSTS7000215" in str(raised.value) and TENANT.client_id in str(raised.value)
    assert_one_clean_line(raised.value, "not-the-secret-value-1234")
    assert sandbox.counts.requests == sandbox.counts.identity_requests  # no query was sent


def test_a_missing_cost_management_reader_role_is_a_permanent_error_naming_the_role(
    make_sandbox, make_client: ClientFactory
) -> None:
    sandbox = make_sandbox()
    scope = CostScope.subscription(NO_READER.subscription_id)

    with pytest.raises(AzureAccessDeniedError) as raised:
        fetch_daily_costs(make_client(sandbox), scope, WINTER, as_of=AS_OF)

    assert raised.value.permanent is True
    assert "Cost Management Reader" in str(raised.value)
    assert "403 AuthorizationFailed" in str(raised.value)
    assert_one_clean_line(raised.value, *sandbox.issued_tokens)


def test_an_unknown_subscription_is_a_permanent_not_found_error(
    make_sandbox, make_client: ClientFactory
) -> None:
    unknown = str(uuid.UUID(int=7))
    with pytest.raises(AzureScopeNotFoundError) as raised:
        fetch_daily_costs(
            make_client(make_sandbox()), CostScope.subscription(unknown), WINTER, as_of=AS_OF
        )

    assert raised.value.permanent is True
    assert unknown in str(raised.value) and "404 SubscriptionNotFound" in str(raised.value)
    assert_one_clean_line(raised.value)


def test_an_unreachable_endpoint_is_a_transient_network_error(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope
) -> None:
    with pytest.raises(AzureNetworkError) as raised:
        fetch_daily_costs(
            make_client(make_sandbox(), unreachable=True), production_scope, WINTER, as_of=AS_OF
        )
    assert raised.value.permanent is False
    assert_one_clean_line(raised.value)


def test_resource_manager_unreachable_after_a_token_is_a_transient_network_error(
    make_sandbox, production_scope: CostScope
) -> None:
    sandbox = make_sandbox()
    transports = iter(
        [AzureSandboxTransport(sandbox), AzureSandboxTransport(sandbox, unreachable=True)]
    )
    client = CostManagementQueryClient(
        sandbox_credentials(TENANT),
        SANDBOX_ENDPOINTS,
        ClientOptions(transport_factory=lambda: next(transports), retry_total=0),
    )

    with client, pytest.raises(AzureNetworkError, match="Resource Manager") as raised:
        fetch_daily_costs(client, production_scope, WINTER, as_of=AS_OF)
    assert raised.value.permanent is False
    assert sandbox.counts.token_requests == 1
    assert_one_clean_line(raised.value, *sandbox.issued_tokens)


def test_resource_manager_refusing_the_token_is_permanent() -> None:
    error = error_for_status(
        401,
        "InvalidAuthenticationTokenAudience",
        scope=CostScope.subscription(PRODUCTION.subscription_id),
        credentials=sandbox_credentials(TENANT),
    )
    assert isinstance(error, AzureAuthenticationError) and error.permanent is True
    assert (
        error_for_status(
            503,
            None,
            scope=CostScope.subscription(PRODUCTION.subscription_id),
            credentials=sandbox_credentials(TENANT),
        ).permanent
        is False
    )


def test_a_next_link_to_another_host_is_never_followed(
    make_sandbox, production_scope: CostScope, sleeps: SleepRecorder
) -> None:
    sandbox = make_sandbox(page_size=100)
    contacted: list[str] = []

    def redirecting(method, url, headers, body):  # type: ignore[no-untyped-def]
        contacted.append(url)
        answer = sandbox.handle(method, url, headers, body)
        text = answer.body.replace(
            b"management.azure-sandbox.finops.invalid/subscriptions",
            b"collector.example.invalid/subscriptions",
        )
        return SandboxResponse(answer.status, answer.headers, text)

    client = CostManagementQueryClient(
        sandbox_credentials(TENANT),
        SANDBOX_ENDPOINTS,
        ClientOptions(
            transport_factory=lambda: InProcessTransport(redirecting, sandbox.base_urls),
            retry_total=0,
        ),
    )
    with client, pytest.raises(AzureUnsafeLinkError, match=r"collector\.example\.invalid"):
        collect_range(client, production_scope, WINTER, as_of=AS_OF)
    assert not any("collector.example.invalid" in url for url in contacted)


@pytest.mark.parametrize(
    ("resource_manager", "authority"),
    [
        ("http://management.azure.com", "https://login.microsoftonline.com"),
        ("https://management.azure.com", "http://login.local"),
        ("https://management.azure.com/path", "https://login.microsoftonline.com"),
        ("management.azure.com", "https://login.microsoftonline.com"),
    ],
)
def test_endpoints_must_be_bare_https_urls(resource_manager: str, authority: str) -> None:
    with pytest.raises(AzureConfigurationError):
        AzureEndpoints(resource_manager, authority)


def test_endpoints_default_to_the_public_cloud() -> None:
    endpoints = AzureEndpoints()
    assert endpoints.credential_scope == "https://management.azure.com/.default"
    assert endpoints.custom_authority is False
    assert SANDBOX_ENDPOINTS.custom_authority is True


# --- secrets -----------------------------------------------------------------------------------


def test_no_secret_or_token_reaches_the_logs_even_at_debug_with_http_logging(
    make_sandbox, make_client: ClientFactory, production_scope: CostScope, caplog
) -> None:
    sandbox = make_sandbox(page_size=300, throttle_rate=0.2)
    secret = sandbox_credentials(TENANT).client_secret.reveal()
    caplog.set_level(logging.DEBUG)

    client = make_client(sandbox, logging_enable=True)
    fetch_daily_costs(client, production_scope, WINTER, as_of=AS_OF)
    with pytest.raises(AzureAccessDeniedError) as denied:
        fetch_daily_costs(
            client, CostScope.subscription(NO_READER.subscription_id), WINTER, as_of=AS_OF
        )

    logged = "\n".join(
        [record.getMessage() for record in caplog.records]
        + [str(record.args) for record in caplog.records]
    )
    assert "Authorization" in logged  # the HTTP logging policy really ran...
    assert sandbox.issued_tokens
    for value in (secret, *sandbox.issued_tokens):
        assert value not in logged  # ...and redacted what it must
        assert value not in str(denied.value)
        assert value not in repr(client)
    assert secret not in repr(sandbox_credentials(TENANT))
