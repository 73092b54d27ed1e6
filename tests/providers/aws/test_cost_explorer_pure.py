"""Pure tests: request building, paging, parsing, normalising, partition keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from finops_pipeline.errors import (
    BillExpiredError,
    PaginationRestartError,
    ProviderAccessDeniedError,
    ProviderDataError,
    ProviderThrottledError,
)
from finops_pipeline.providers.aws.paging import fetch_all_pages
from finops_pipeline.providers.aws.parsing import CostPageParser, parse_cost_pages
from finops_pipeline.providers.aws.request import build_daily_cost_request
from finops_pipeline.sync.normalise import (
    UNSPECIFIED,
    check_rows_within_window,
    normalise_cost_rows,
)
from finops_pipeline.sync.ranges import (
    DateRange,
    contiguous_ranges,
    ranges_by_account,
    split_partition_key,
)
from tests.ce_responses import day_result, group, paginate

D = dt.date


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetCostAndUsage")


class ScriptedCostExplorer:
    """Answers like Cost Explorer from a script; records every request it was sent."""

    def __init__(self, script: list[dict[str, Any] | Exception]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        answer = self.script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


# --- request -------------------------------------------------------------------------------


def test_request_end_is_exclusive_and_daily_grouped_by_service_and_usage_type() -> None:
    request = build_daily_cost_request(D(2024, 1, 1), D(2024, 1, 31))
    assert request["TimePeriod"] == {"Start": "2024-01-01", "End": "2024-02-01"}
    assert request["Granularity"] == "DAILY"
    assert request["GroupBy"] == [
        {"Type": "DIMENSION", "Key": "SERVICE"},
        {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
    ]
    assert set(request["Metrics"]) == {
        "UnblendedCost",
        "AmortizedCost",
        "NetUnblendedCost",
        "UsageQuantity",
    }
    assert "Filter" not in request and "NextPageToken" not in request


def test_request_one_day_and_linked_account_filter() -> None:
    request = build_daily_cost_request(D(2024, 2, 29), D(2024, 2, 29), linked_account="1111")
    assert request["TimePeriod"] == {"Start": "2024-02-29", "End": "2024-03-01"}
    assert request["Filter"] == {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["1111"]}}


def test_request_rejects_reversed_window_and_three_group_bys() -> None:
    with pytest.raises(ValueError):
        build_daily_cost_request(D(2024, 1, 2), D(2024, 1, 1))
    with pytest.raises(ValueError):
        build_daily_cost_request(D(2024, 1, 1), D(2024, 1, 1), group_by=(("DIMENSION", "A"),) * 3)


# --- paging --------------------------------------------------------------------------------


def pages(n: int, *, cost: str = "1", token_prefix: str = "page") -> list[dict[str, Any]]:
    """``n`` one-day pages from 2024-01-01, one group each costing ``cost``."""
    days = [
        day_result(D(2024, 1, 1) + dt.timedelta(days=i), [group("S", "U", cost)]) for i in range(n)
    ]
    return paginate(days, per_page=1, token_prefix=token_prefix)


def test_paging_follows_tokens_with_identical_parameters() -> None:
    api = ScriptedCostExplorer(pages(3))
    request = build_daily_cost_request(D(2024, 1, 1), D(2024, 1, 3))
    result = fetch_all_pages(api, request)
    assert result.paid_requests == 3 and len(result.pages) == 3
    assert [r.get("NextPageToken") for r in api.requests] == [None, "page-1", "page-2"]
    for sent in api.requests:
        assert {k: v for k, v in sent.items() if k != "NextPageToken"} == request
    assert "NextPageToken" not in request  # the caller's request is never mutated


def test_paging_restarts_cleanly_after_token_error_without_mixing_attempts() -> None:
    first_attempt = pages(3)
    second_attempt = pages(3, cost="2", token_prefix="retry")
    api = ScriptedCostExplorer(
        [first_attempt[0], client_error("InvalidNextTokenException"), *second_attempt]
    )
    result = fetch_all_pages(api, build_daily_cost_request(D(2024, 1, 1), D(2024, 1, 3)))
    assert result.restarts == 1
    assert result.pages == second_attempt  # nothing from the first attempt survives
    assert result.paid_requests == 4  # the failed request is free; the discarded page was paid
    parsed = parse_cost_pages(result.pages).frame
    assert set(parsed["unblended_cost"]) == {"2"}


def test_a_parser_takes_each_page_as_it_arrives_and_a_restart_discards_the_first_attempt() -> None:
    first_attempt = pages(3)
    second_attempt = pages(3, cost="2", token_prefix="retry")
    api = ScriptedCostExplorer(
        [*first_attempt[:2], client_error("InvalidNextTokenException"), *second_attempt]
    )
    parser = CostPageParser()
    result = fetch_all_pages(
        api, build_daily_cost_request(D(2024, 1, 1), D(2024, 1, 3)), consumer=parser
    )
    assert result.pages == []  # the parser had each page; the pager kept none
    assert result.restarts == 1 and result.paid_requests == 5
    frame = parser.result().frame
    # Only the second attempt's rows, each day once: the same rows as parsing the pages whole.
    assert list(frame["unblended_cost"]) == ["2", "2", "2"]
    assert frame.equals(parse_cost_pages(second_attempt).frame)


def test_a_malformed_page_stops_the_sequence_there_so_no_more_pages_are_paid_for() -> None:
    good = pages(3)
    api = ScriptedCostExplorer([good[0], {"NextPageToken": "page-2"}, good[2]])
    with pytest.raises(ProviderDataError, match="page 2 has no ResultsByTime"):
        fetch_all_pages(api, {"x": 1}, consumer=CostPageParser())
    assert len(api.requests) == 2


def test_data_unavailable_part_way_leaves_the_parser_empty() -> None:
    parser = CostPageParser()
    result = fetch_all_pages(
        ScriptedCostExplorer([pages(2)[0], client_error("DataUnavailableException")]),
        {"x": 1},
        consumer=parser,
    )
    assert result.data_unavailable and parser.result().frame.empty


def test_paging_gives_up_after_repeated_restarts() -> None:
    api = ScriptedCostExplorer([client_error("RequestChangedException")] * 3)
    with pytest.raises(PaginationRestartError):
        fetch_all_pages(api, {"x": 1}, max_restarts=2)


def test_paging_stops_on_a_repeated_token() -> None:
    loop = {"ResultsByTime": [], "NextPageToken": "same"}
    api = ScriptedCostExplorer([loop, loop, loop])
    with pytest.raises(ProviderDataError, match="already returned"):
        fetch_all_pages(api, {"x": 1})
    assert len(api.requests) == 2


def test_data_unavailable_means_no_pages_and_a_flag() -> None:
    api = ScriptedCostExplorer([client_error("DataUnavailableException")])
    result = fetch_all_pages(api, {"x": 1})
    assert result.data_unavailable and result.pages == [] and result.paid_requests == 0


@pytest.mark.parametrize(
    ("code", "error_type", "permanent"),
    [
        ("AccessDeniedException", ProviderAccessDeniedError, True),
        ("BillExpirationException", BillExpiredError, True),
        ("LimitExceededException", ProviderThrottledError, False),
    ],
)
def test_client_errors_become_typed_errors(code: str, error_type: type, permanent: bool) -> None:
    with pytest.raises(error_type) as raised:
        fetch_all_pages(ScriptedCostExplorer([client_error(code)]), {"x": 1})
    assert raised.value.permanent is permanent


# --- parsing -------------------------------------------------------------------------------


def test_parsing_keeps_exact_decimals_group_keys_and_estimated_flags() -> None:
    page_one = {
        "ResultsByTime": [
            day_result(D(2024, 1, 1), [group("Amazon EC2", "BoxUsage", "0.1000000001")]),
            day_result(D(2024, 1, 2), [group("Amazon S3", "Requests", "-3.5")], estimated=True),
        ],
        "NextPageToken": "t",
    }
    # The same day continues on the next page, as Cost Explorer splits groups across pages.
    page_two = {
        "ResultsByTime": [
            day_result(D(2024, 1, 2), [group("AWS Lambda", "Request", "0.2")], estimated=True),
            day_result(D(2024, 1, 3), []),
        ]
    }
    parsed = parse_cost_pages([page_one, page_two])
    frame = parsed.frame
    assert len(frame) == 3
    # Amounts stay the provider's exact decimal text until COPY writes them into numeric.
    assert frame.loc[0, "unblended_cost"] == "0.1000000001"
    assert frame.loc[1, "unblended_cost"] == "-3.5"  # credits stay negative
    assert list(frame["service"]) == ["Amazon EC2", "Amazon S3", "AWS Lambda"]
    assert list(frame["usage_type"]) == ["BoxUsage", "Requests", "Request"]
    assert list(frame["is_estimated"]) == [False, True, True]
    assert parsed.estimated_by_day == {
        D(2024, 1, 1): False,
        D(2024, 1, 2): True,
        D(2024, 1, 3): False,
    }


@pytest.mark.parametrize(
    "bad_page",
    [
        {},
        {"ResultsByTime": [{"TimePeriod": {}}]},
        {"ResultsByTime": [day_result(D(2024, 1, 1), [{"Keys": ["only-one"], "Metrics": {}}])]},
        {"ResultsByTime": [day_result(D(2024, 1, 1), [{"Keys": ["a", "b"], "Metrics": {}}])]},
        {"ResultsByTime": [day_result(D(2024, 1, 1), [group("a", "b", "not-a-number")])]},
        {"ResultsByTime": [day_result(D(2024, 1, 1), [group("a", "b", "NaN")])]},
    ],
)
def test_malformed_pages_raise_a_clear_error(bad_page: dict[str, Any]) -> None:
    with pytest.raises(ProviderDataError):
        parse_cost_pages([bad_page])


def test_mixed_currencies_within_a_group_are_refused() -> None:
    mixed = group("a", "b", "1")
    mixed["Metrics"]["AmortizedCost"]["Unit"] = "EUR"
    with pytest.raises(ProviderDataError, match="currency"):
        parse_cost_pages([{"ResultsByTime": [day_result(D(2024, 1, 1), [mixed])]}])


# --- normalising ---------------------------------------------------------------------------


def test_normalise_trims_names_fills_blanks_and_merges_collapsed_keys() -> None:
    parsed = parse_cost_pages(
        [
            {
                "ResultsByTime": [
                    day_result(
                        D(2024, 1, 1),
                        [
                            group(" Amazon EC2 ", "BoxUsage", "1.10", usage="2", currency="usd"),
                            group("Amazon EC2", "BoxUsage", "2.20", usage="3"),
                            group("Tax", "", "0.5", unit="N/A"),
                        ],
                        estimated=True,
                    )
                ]
            }
        ]
    ).frame
    rows = normalise_cost_rows(parsed, tenant_id="t", cloud_account_id="a", provider="aws")
    assert len(rows) == 2
    ec2 = rows[rows["service"] == "Amazon EC2"].iloc[0]
    assert ec2["unblended_cost"] == "3.30" and ec2["usage_quantity"] == "5"
    assert ec2["currency"] == "USD" and bool(ec2["is_estimated"])
    tax = rows[rows["service"] == "Tax"].iloc[0]
    assert tax["usage_type"] == UNSPECIFIED and tax["usage_unit"] is None
    assert list(rows.columns[:6]) == [
        "tenant_id",
        "cloud_account_id",
        "date",
        "provider",
        "service",
        "usage_type",
    ]


def test_normalise_refuses_two_currencies_for_one_key() -> None:
    parsed = parse_cost_pages(
        [
            {
                "ResultsByTime": [
                    day_result(
                        D(2024, 1, 1),
                        [
                            group("S", "U", "1", currency="USD"),
                            group("S ", "U", "1", currency="EUR"),
                        ],
                    )
                ]
            }
        ]
    ).frame
    with pytest.raises(ProviderDataError):
        normalise_cost_rows(parsed, tenant_id="t", cloud_account_id="a", provider="aws")


def test_rows_outside_the_window_are_refused() -> None:
    frame = pd.DataFrame({"date": [D(2024, 1, 1), D(2024, 1, 5)]})
    check_rows_within_window(frame, D(2024, 1, 1), D(2024, 1, 5))
    with pytest.raises(ProviderDataError):
        check_rows_within_window(frame, D(2024, 1, 1), D(2024, 1, 4))


# --- partition keys ------------------------------------------------------------------------


def test_partition_keys_become_contiguous_ranges_per_account() -> None:
    keys = [
        "acc-1|2024-01-01",
        "acc-1|2024-01-02",
        "acc-1|2024-01-03",
        "acc-1|2024-01-07",
        "acc-2|2024-01-02",
    ]
    assert ranges_by_account(keys) == {
        "acc-1": [DateRange(D(2024, 1, 1), D(2024, 1, 3)), DateRange(D(2024, 1, 7), D(2024, 1, 7))],
        "acc-2": [DateRange(D(2024, 1, 2), D(2024, 1, 2))],
    }


def test_contiguous_ranges_cross_month_and_ignore_duplicates() -> None:
    days = [D(2024, 1, 31), D(2024, 2, 1), D(2024, 2, 1), D(2024, 2, 29), D(2024, 3, 1)]
    assert contiguous_ranges(days) == [
        DateRange(D(2024, 1, 31), D(2024, 2, 1)),
        DateRange(D(2024, 2, 29), D(2024, 3, 1)),
    ]


def test_bad_partition_key_is_refused() -> None:
    with pytest.raises(ValueError):
        split_partition_key("2024-01-01")
