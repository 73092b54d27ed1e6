"""The sandbox Cost Explorer, through the real boto3 client, checked against its own generator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from finops_pipeline.errors import (
    BillExpiredError,
    ProviderAccessDeniedError,
    ProviderThrottledError,
)
from finops_pipeline.providers.aws.client import build_cost_explorer_client, client_config
from finops_pipeline.providers.aws.credentials import AwsAccessKeyCredentials
from finops_pipeline.providers.aws.paging import fetch_all_pages
from finops_pipeline.providers.aws.parsing import parse_cost_pages
from finops_pipeline.providers.aws.request import build_daily_cost_request
from finops_pipeline.providers.aws.sandbox import (
    SANDBOX_ENDPOINT_URL,
    Pull,
    SandboxGenerator,
    advance_generation,
    is_sandbox_endpoint,
    read_generation,
    request_counts,
    reset_request_counts,
    sandbox_credentials,
)
from finops_pipeline.providers.aws.sandbox.generator import SETTLING_DAYS
from finops_pipeline.providers.aws.sandbox.service import history_start
from finops_pipeline.providers.aws.spec import AWS
from finops_pipeline.security.credentials import Secret

AS_OF = dt.date(2026, 3, 15)
PULL = Pull(as_of=AS_OF, generation=1)
STANDALONE = "320000000001"
PAYER, MEMBERS = "210000000001", ("210000000002", "210000000003")
METRICS = ["UnblendedCost", "AmortizedCost", "NetUnblendedCost", "UsageQuantity"]


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Callable[..., Any]:
    """Build a sandbox ``ce`` client for an account, with pinned settings."""
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("FINOPS_SANDBOX_AS_OF", AS_OF.isoformat())
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "1")
    reset_request_counts()

    def build(
        account: str = STANDALONE, *, page_size: int = 2000, max_attempts: int = 8, **env: str
    ) -> Any:
        monkeypatch.setenv("FINOPS_SANDBOX_PAGE_SIZE", str(page_size))
        for name, value in env.items():
            monkeypatch.setenv(f"FINOPS_SANDBOX_{name.upper()}", value)
        return build_cost_explorer_client(
            sandbox_credentials(account),
            endpoint_url=SANDBOX_ENDPOINT_URL,
            config=client_config(max_attempts=max_attempts),
            client_hook=AWS.client_hook,
        )

    return build


def all_pages(client: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    return fetch_all_pages(client.get_cost_and_usage, request).pages


def day_total(generator: SandboxGenerator, account: str, day: dt.date) -> Decimal:
    return sum(
        (row.unblended for row in generator.organisation_day(account, day, PULL).rows), Decimal(0)
    )


def request(start: dt.date, end: dt.date, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": METRICS,
    }
    body.update(extra)
    return body


def test_sandbox_endpoint_is_recognised_only_by_host() -> None:
    assert is_sandbox_endpoint(SANDBOX_ENDPOINT_URL)
    assert is_sandbox_endpoint("https://SANDBOX.finops.invalid:443/")
    assert not is_sandbox_endpoint("https://ce.us-east-1.amazonaws.com")
    assert not is_sandbox_endpoint("https://sandbox.finops.invalid.example.com")
    assert not is_sandbox_endpoint(None)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2026, 1, 1), dt.date(2026, 2, 1)),
        (dt.date(2025, 12, 17), dt.date(2026, 3, 4)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 16)),  # through today, which is partial
    ],
)
def test_totals_over_a_range_equal_the_sum_of_its_days(
    sandbox: Callable[..., Any], start: dt.date, end: dt.date
) -> None:
    client = sandbox()
    generator = SandboxGenerator()
    expected_days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    daily = all_pages(client, request(start, end))
    monthly = all_pages(client, request(start, end, Granularity="MONTHLY"))

    daily_totals = {
        dt.date.fromisoformat(result["TimePeriod"]["Start"]): Decimal(
            result["Total"]["UnblendedCost"]["Amount"]
        )
        for page in daily
        for result in page["ResultsByTime"]
    }
    # End is exclusive: exactly the days from Start to the day before End.
    assert sorted(daily_totals) == expected_days
    for day, total in daily_totals.items():
        assert total == day_total(generator, STANDALONE, day)
    monthly_total = sum(
        (
            Decimal(result["Total"]["UnblendedCost"]["Amount"])
            for page in monthly
            for result in page["ResultsByTime"]
        ),
        Decimal(0),
    )
    assert monthly_total == sum(daily_totals.values())
    months = [result["TimePeriod"] for page in monthly for result in page["ResultsByTime"]]
    assert months[0]["Start"] == start.isoformat()
    assert months[-1]["End"] == end.isoformat()


def test_one_day_request_returns_that_day_only(sandbox: Callable[..., Any]) -> None:
    day = dt.date(2026, 2, 10)
    pages = all_pages(sandbox(), request(day, day + dt.timedelta(days=1)))
    results = [result for page in pages for result in page["ResultsByTime"]]
    assert [r["TimePeriod"] for r in results] == [{"Start": "2026-02-10", "End": "2026-02-11"}]


def test_grouping_by_service_and_usage_type_matches_the_generator(
    sandbox: Callable[..., Any],
) -> None:
    day = dt.date(2026, 2, 10)
    client = sandbox()
    pages = all_pages(client, build_daily_cost_request(day, day))
    parsed = parse_cost_pages(pages).frame
    rows = SandboxGenerator().day_costs(STANDALONE, day, PULL).rows
    expected = {(r.service, r.usage_type): (r.unblended, r.usage, r.unit) for r in rows}
    got = {
        (r.service, r.usage_type): (r.unblended_cost, r.usage_quantity, r.usage_unit)
        for r in parsed.itertuples()
    }
    assert got == expected
    assert pages[0]["GroupDefinitions"] == [
        {"Type": "DIMENSION", "Key": "SERVICE"},
        {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
    ]
    # Mixed units cannot be summed: grouped by SERVICE only, multi-unit services say N/A.
    by_service = all_pages(
        client,
        request(day, day + dt.timedelta(days=1), GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}]),
    )
    units = {
        g["Keys"][0]: g["Metrics"]["UsageQuantity"]["Unit"]
        for page in by_service
        for result in page["ResultsByTime"]
        for g in result["Groups"]
    }
    for service in {r.service for r in rows}:
        service_units = {r.unit for r in rows if r.service == service}
        assert units[service] == (service_units.pop() if len(service_units) == 1 else "N/A")


def test_linked_account_grouping_and_filter_for_a_payer(sandbox: Callable[..., Any]) -> None:
    day = dt.date(2026, 1, 20)
    client = sandbox(PAYER)
    generator = SandboxGenerator()
    grouped = all_pages(
        client,
        request(
            day,
            day + dt.timedelta(days=1),
            GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}],
        ),
    )
    per_account = {
        g["Keys"][0]: Decimal(g["Metrics"]["UnblendedCost"]["Amount"])
        for page in grouped
        for result in page["ResultsByTime"]
        for g in result["Groups"]
    }
    assert per_account == {
        account: sum(
            (row.unblended for row in generator.day_costs(account, day, PULL).rows), Decimal(0)
        )
        for account in (PAYER, *MEMBERS)
    }
    filtered = all_pages(client, build_daily_cost_request(day, day, linked_account=MEMBERS[0]))
    parsed = parse_cost_pages(filtered).frame
    member_rows = generator.day_costs(MEMBERS[0], day, PULL).rows
    assert len(parsed) == len(member_rows)
    assert sum(parsed["unblended_cost"], Decimal(0)) == per_account[MEMBERS[0]]
    # A standalone account sees only itself.
    other = all_pages(sandbox(STANDALONE), build_daily_cost_request(day, day, linked_account=PAYER))
    assert all(not r["Groups"] for page in other for r in page["ResultsByTime"])


@pytest.mark.parametrize("page_size", [1, 7, 50, 100_000])
def test_pagination_is_complete_and_minimal(sandbox: Callable[..., Any], page_size: int) -> None:
    start, end = dt.date(2026, 1, 25), dt.date(2026, 2, 3)
    client = sandbox(page_size=page_size)
    generator = SandboxGenerator()
    paged = fetch_all_pages(client.get_cost_and_usage, build_daily_cost_request(start, end))
    frame = parse_cost_pages(paged.pages).frame
    expected = [
        (day.day, row.service, row.usage_type, row.unblended)
        for day in (
            generator.day_costs(STANDALONE, start + dt.timedelta(days=i), PULL) for i in range(10)
        )
        for row in day.rows
    ]
    got = list(
        frame[["date", "service", "usage_type", "unblended_cost"]].itertuples(
            index=False, name=None
        )
    )
    assert sorted(got) == sorted(expected)
    assert len(got) == len(set(got))
    assert paged.paid_requests == -(-len(expected) // page_size)
    assert request_counts().paid == paged.paid_requests


def test_tokens_are_checked(sandbox: Callable[..., Any]) -> None:
    client = sandbox(page_size=5)
    body = build_daily_cost_request(dt.date(2026, 1, 1), dt.date(2026, 1, 3))
    token = client.get_cost_and_usage(**body)["NextPageToken"]
    changed = build_daily_cost_request(dt.date(2026, 1, 1), dt.date(2026, 1, 4))
    with pytest.raises(ClientError) as error:
        client.get_cost_and_usage(**changed, NextPageToken=token)
    assert error.value.response["Error"]["Code"] == "RequestChangedException"
    with pytest.raises(ClientError) as error:
        client.get_cost_and_usage(**body, NextPageToken="not-a-token")
    assert error.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_throttling_is_retried_by_botocore_standard_mode(sandbox: Callable[..., Any]) -> None:
    client = sandbox(page_size=200, throttle_rate="0.5")
    paged = fetch_all_pages(
        client.get_cost_and_usage,
        build_daily_cost_request(dt.date(2026, 1, 1), dt.date(2026, 1, 10)),
    )
    counts = request_counts()
    assert paged.paid_requests == counts.paid >= 2
    # Every other attempt is refused, and each refusal is retried once.
    assert counts.throttled == counts.paid


def test_throttling_that_never_stops_raises_a_typed_error(sandbox: Callable[..., Any]) -> None:
    client = sandbox(throttle_rate="1", max_attempts=2)
    with pytest.raises(ProviderThrottledError):
        fetch_all_pages(
            client.get_cost_and_usage,
            build_daily_cost_request(dt.date(2026, 1, 1), dt.date(2026, 1, 1)),
        )
    # Config(retries={"max_attempts": 2}) means two retries after the first attempt.
    assert request_counts().throttled == 3
    assert request_counts().paid == 0


def test_windows_older_than_daily_history_are_refused(sandbox: Callable[..., Any]) -> None:
    earliest = history_start(AS_OF)
    assert earliest == dt.date(2025, 2, 1)
    client = sandbox()
    fetch_all_pages(client.get_cost_and_usage, build_daily_cost_request(earliest, earliest))
    with pytest.raises(BillExpiredError):
        fetch_all_pages(
            client.get_cost_and_usage,
            build_daily_cost_request(earliest - dt.timedelta(days=1), earliest),
        )


def test_wrong_secret_is_refused_like_aws(sandbox: Callable[..., Any]) -> None:
    sandbox()
    good = sandbox_credentials(STANDALONE)
    wrong = AwsAccessKeyCredentials(good.access_key_id, Secret("0" * 40))
    client = build_cost_explorer_client(
        wrong, endpoint_url=SANDBOX_ENDPOINT_URL, client_hook=AWS.client_hook
    )
    with pytest.raises(ProviderAccessDeniedError):
        fetch_all_pages(
            client.get_cost_and_usage,
            build_daily_cost_request(dt.date(2026, 1, 1), dt.date(2026, 1, 1)),
        )
    assert request_counts().paid == 0


def test_recent_days_are_estimated_and_restated_between_pulls() -> None:
    generator = SandboxGenerator()
    first, second = Pull(AS_OF, 1), Pull(AS_OF, 2)
    for age in range(1, 30):
        day = AS_OF - dt.timedelta(days=age)
        before, after = (
            generator.day_costs(STANDALONE, day, first),
            generator.day_costs(STANDALONE, day, second),
        )
        assert before.estimated is after.estimated is (age <= SETTLING_DAYS)
        values = [(r.service, r.usage_type, r.unblended) for r in before.rows]
        again = [(r.service, r.usage_type, r.unblended) for r in after.rows]
        if age <= SETTLING_DAYS:
            assert [v[:2] for v in values] == [v[:2] for v in again]
            assert values != again
        else:
            assert values == again
    assert generator.day_costs(STANDALONE, AS_OF + dt.timedelta(days=1), first).rows == ()


def test_the_organisation_looks_like_a_real_bill() -> None:
    generator = SandboxGenerator()
    pull = Pull(dt.date(2026, 11, 1), 0)
    days = [dt.date(2025, 11, 1) + dt.timedelta(days=i) for i in range(365)]
    accounts = ["320000000001", "320000000002", "430000000001", PAYER, *MEMBERS]
    services = {line.service for a in accounts for line in generator.profile(a).lines}
    assert len(services) >= 30
    negative = 0
    weekday, weekend = [], []
    for account in accounts:
        profile = generator.profile(account)
        assert profile.anomalies
        for day in days:
            costs = generator.day_costs(account, day, pull)
            negative += sum(1 for row in costs.rows if row.unblended < 0)
            total = float(sum((r.unblended for r in costs.rows if r.unblended > 0), Decimal(0)))
            (weekend if day.weekday() >= 5 else weekday).append(total)
    assert negative > 0  # credits and refunds
    assert sum(weekend) / len(weekend) < sum(weekday) / len(weekday)
    # Same seed, same numbers; another seed, other numbers.
    day = dt.date(2026, 5, 5)
    assert SandboxGenerator().day_costs(STANDALONE, day, pull) == generator.day_costs(
        STANDALONE, day, pull
    )
    assert SandboxGenerator(seed=7).day_costs(STANDALONE, day, pull) != generator.day_costs(
        STANDALONE, day, pull
    )


def test_generation_file_advances(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path))
    monkeypatch.delenv("FINOPS_SANDBOX_GENERATION", raising=False)
    assert read_generation() == 0
    assert advance_generation() == 1
    assert advance_generation() == 2
    assert read_generation() == 2
    monkeypatch.setenv("FINOPS_SANDBOX_GENERATION", "9")
    assert read_generation() == 9
