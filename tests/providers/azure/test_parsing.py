"""Parsing Query pages by column name with exact decimals, and merging the two cost types."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.providers.azure.parsing import (
    CostRecord,
    QueryPage,
    is_estimated_day,
    merge_cost_types,
    month_closes_on,
    parse_query_page,
    parse_usage_date,
    read_cost_records,
)
from finops_pipeline.providers.base import PARSED_COLUMNS
from tests.providers.azure.conftest import example_body_text

COLUMNS = [
    {"name": "Cost", "type": "Number"},
    {"name": "UsageQuantity", "type": "Number"},
    {"name": "UsageDate", "type": "Number"},
    {"name": "ServiceName", "type": "String"},
    {"name": "Meter", "type": "String"},
    {"name": "Currency", "type": "String"},
]
ROWS = [
    ["12.5", "3", 20240101, '"Virtual Machines"', '"D4s v5"', '"USD"'],
    ["0.000000000000000001", "0.5", 20240102, '"Storage"', '"Hot LRS Data Stored"', '"usd"'],
]


def page_text(
    columns: list[dict[str, str]], rows: list[list[object]], next_link: str | None
) -> str:
    """A Query result with numbers written as given (raw JSON), so tests control the digits."""
    row_text = ",".join("[" + ",".join(str(value) for value in row) + "]" for row in rows)
    return (
        '{"id":"x","name":"x","type":"Microsoft.CostManagement/query","properties":{'
        f'"nextLink":{json.dumps(next_link)},"columns":{json.dumps(columns)},"rows":[{row_text}]'
        "}}"
    )


# --- the official examples ---------------------------------------------------------------


def test_official_subscription_example_parses_by_name_with_exact_costs() -> None:
    page = parse_query_page(example_body_text("SubscriptionQuery.json"))

    assert page.columns == ("PreTaxCost", "ResourceGroup", "UsageDate", "Currency")
    assert page.next_link is None
    records = read_cost_records(page, grouping=("ResourceGroup",))
    assert [(r.day, r.service, r.cost, r.currency) for r in records] == [
        (dt.date(2018, 3, 31), "ScreenSharingTest-peer", Decimal("2.10333307059661"), "USD"),
        (
            dt.date(2018, 3, 31),
            "Ict_StratAndPlan_GoldSprova_Prod",
            Decimal("218.68795741935486"),
            "USD",
        ),
        (dt.date(2018, 4, 1), "ssbciotelement01", Decimal("0.14384913581657052"), "USD"),
        (
            dt.date(2018, 4, 29),
            "ict_stratandplan_goldsprova_prod",
            Decimal("0.009865586851323632"),
            "USD",
        ),
    ]
    # No UsageQuantity column in a Usage-type query: quantity 0, meter empty.
    assert {(r.meter, r.usage_quantity) for r in records} == {("", Decimal(0))}


def test_official_mca_example_carries_its_next_link_verbatim() -> None:
    page = parse_query_page(example_body_text("MCABillingProfileQuery.json"))

    assert page.next_link == (
        "https://management.azure.com/providers/Microsoft.Billing/billingAccounts/12345:6789/"
        "billingProfiles/13579/providers/Microsoft.CostManagement/Query?api-version=2021-10-01"
        "&$skiptoken=AQAAAA%3D%3D"
    )
    records = read_cost_records(page, grouping=("ResourceGroup",))
    assert sum(r.cost for r in records) == Decimal("19.545363672276512") + Decimal(
        "173.41979241290323"
    ) + Decimal("20.35941656262545") + Decimal("0.16677720329728665")
    assert {r.day for r in records} == {dt.date(2018, 3, 31)}


@pytest.mark.parametrize(
    "name", ["SubscriptionQueryGrouping.json", "BillingAccountQueryGrouping.json"]
)
def test_official_examples_without_daily_granularity_are_refused_clearly(name: str) -> None:
    page = parse_query_page(example_body_text(name))

    assert page.columns == ("PreTaxCost", "ResourceGroup", "Currency")
    assert all(isinstance(row[0], Decimal) for row in page.rows)
    with pytest.raises(ProviderDataError, match="no UsageDate column"):
        read_cost_records(page, grouping=("ResourceGroup",))


# --- columns, dates, empty pages -----------------------------------------------------------


def test_columns_in_a_different_order_give_the_same_records() -> None:
    ordered = read_cost_records(parse_query_page(page_text(COLUMNS, ROWS, None)))
    order = [5, 3, 0, 2, 4, 1]
    shuffled = read_cost_records(
        parse_query_page(
            page_text([COLUMNS[i] for i in order], [[row[i] for i in order] for row in ROWS], None)
        )
    )

    assert shuffled == ordered
    assert ordered[0] == CostRecord(
        day=dt.date(2024, 1, 1),
        service="Virtual Machines",
        meter="D4s v5",
        cost=Decimal("12.5"),
        usage_quantity=Decimal(3),
        currency="USD",
    )
    assert ordered[1].currency == "USD"  # upper-cased


def test_pre_tax_cost_is_accepted_as_the_cost_column() -> None:
    columns = [dict(c, name="PreTaxCost") if c["name"] == "Cost" else c for c in COLUMNS]
    records = read_cost_records(parse_query_page(page_text(columns, ROWS, None)))
    assert records[0].cost == Decimal("12.5")


@pytest.mark.parametrize("text", [None, "", "   "])
def test_an_empty_body_is_a_page_without_rows(text: str | None) -> None:
    assert parse_query_page(text) == QueryPage.empty()


def test_a_204_is_a_page_without_rows_whatever_its_body() -> None:
    assert parse_query_page("ignored", status=204) == QueryPage.empty()


def test_a_page_with_no_rows_reads_as_no_records() -> None:
    page = parse_query_page(page_text(COLUMNS, [], None))
    assert page.rows == ()
    assert read_cost_records(page) == []


def test_usage_date_is_an_integer_yyyymmdd() -> None:
    assert parse_usage_date(20240229) == dt.date(2024, 2, 29)
    assert parse_usage_date("20240101") == dt.date(2024, 1, 1)
    for bad in (2024010, 20241301, True, 2.024e7, None):
        with pytest.raises(ProviderDataError):
            parse_usage_date(bad)


def test_a_missing_column_is_named_in_the_error() -> None:
    columns = [c for c in COLUMNS if c["name"] != "Currency"]
    rows = [row[:5] for row in ROWS]
    with pytest.raises(ProviderDataError, match="no Currency column"):
        read_cost_records(parse_query_page(page_text(columns, rows, None)))


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '{"properties": []}'])
def test_malformed_bodies_raise_a_typed_error(body: str) -> None:
    with pytest.raises(ProviderDataError):
        parse_query_page(body)


def test_a_row_with_the_wrong_width_is_refused() -> None:
    with pytest.raises(ProviderDataError, match="6 columns"):
        parse_query_page(page_text(COLUMNS, [["1", "2", 20240101]], None))


# --- exact decimals ------------------------------------------------------------------------


def test_decimals_are_kept_exactly_through_very_long_fractions() -> None:
    long_cost = "1234567.123456789012345678901234567890123"
    tiny = "0.000000000000000000000000000000000123456789"
    rows = [
        [long_cost, tiny, 20240101, '"Virtual Machines"', '"D4s v5"', '"USD"'],
        ["-0.1000000000000000055511151231257827", "1e-30", 20240101, '"Storage"', '"x"', '"USD"'],
    ]
    records = read_cost_records(parse_query_page(page_text(COLUMNS, rows, None)))

    assert str(records[0].cost) == long_cost
    assert records[0].usage_quantity == Decimal(tiny)
    assert records[1].cost == Decimal("-0.1000000000000000055511151231257827")
    assert records[1].usage_quantity == Decimal("1e-30")
    # Through a float the same text would have lost digits: the test can tell the two apart.
    assert Decimal(repr(float(long_cost))) != Decimal(long_cost)


def test_a_float_amount_is_refused_rather_than_trusted() -> None:
    page = QueryPage(
        columns=tuple(c["name"] for c in COLUMNS),
        rows=((12.5, 3, 20240101, "Virtual Machines", "D4s v5", "USD"),),
        next_link=None,
    )
    with pytest.raises(ProviderDataError, match="not an exact JSON number"):
        read_cost_records(page)


# --- is_estimated --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "as_of", "estimated"),
    [
        ("2024-01-31", "2024-02-05", True),  # January can still change on the 5th
        ("2024-01-31", "2024-02-06", False),
        ("2024-01-01", "2024-01-01", True),
        ("2023-12-15", "2024-01-05", True),  # across the year end
        ("2023-12-15", "2024-01-06", False),
        ("2024-02-10", "2024-02-20", True),
        ("2023-11-30", "2024-02-20", False),
    ],
)
def test_days_of_a_month_that_has_not_closed_are_estimated(
    day: str, as_of: str, estimated: bool
) -> None:
    assert is_estimated_day(dt.date.fromisoformat(day), dt.date.fromisoformat(as_of)) is estimated


def test_month_closes_on_the_fifth_of_the_next_month() -> None:
    assert month_closes_on(dt.date(2024, 12, 31)) == dt.date(2025, 1, 5)


# --- merging actual and amortized ----------------------------------------------------------


def record(day: int, service: str, meter: str, cost: str, usage: str = "1") -> CostRecord:
    return CostRecord(
        day=dt.date(2025, 2, day),
        service=service,
        meter=meter,
        cost=Decimal(cost),
        usage_quantity=Decimal(usage),
        currency="EUR",
    )


def test_actual_and_amortized_merge_per_key_with_zero_for_a_missing_side() -> None:
    actual = [
        record(1, "Virtual Machines", "D4s v5", "4.000000000000000001", "24"),
        record(1, "Virtual Machines", "Reserved VM Instance, 1 Year", "700.25", "1"),
        record(2, "Storage", "Hot LRS Data Stored", "1.5", "80"),
    ]
    amortized = [
        record(1, "Virtual Machines", "D4s v5", "11.123456789012345678", "24"),
        record(2, "Storage", "Hot LRS Data Stored", "1.5", "80"),
        record(3, "Bandwidth", "Standard Data Transfer Out", "0.25", "2"),
    ]
    days = [dt.date(2025, 2, d) for d in (1, 2, 3, 4)]

    parsed = merge_cost_types(actual, amortized, days=days, as_of=dt.date(2025, 3, 10))
    frame = parsed.frame

    assert list(frame.columns) == list(PARSED_COLUMNS)
    rows = {(r.date.day, r.service, r.usage_type): r for r in frame.itertuples()}
    assert len(rows) == 4
    vm = rows[(1, "Virtual Machines", "D4s v5")]
    assert (vm.unblended_cost, vm.amortized_cost, vm.net_unblended_cost) == (
        Decimal("4.000000000000000001"),
        Decimal("11.123456789012345678"),
        Decimal("4.000000000000000001"),
    )
    purchase = rows[(1, "Virtual Machines", "Reserved VM Instance, 1 Year")]
    assert (purchase.unblended_cost, purchase.amortized_cost) == (Decimal("700.25"), Decimal(0))
    transfer = rows[(3, "Bandwidth", "Standard Data Transfer Out")]
    assert (transfer.unblended_cost, transfer.amortized_cost, transfer.net_unblended_cost) == (
        Decimal(0),
        Decimal("0.25"),
        Decimal(0),
    )
    assert transfer.usage_quantity == Decimal(2)  # from the only side that has the key
    assert set(frame["currency"]) == {"EUR"}
    assert frame["usage_unit"].isna().all()
    assert not frame["is_estimated"].any()  # February closed on March 5th
    assert parsed.estimated_by_day == dict.fromkeys(days, False)
    assert all(isinstance(v, Decimal) for v in frame["unblended_cost"])


def test_days_of_an_open_month_are_estimated_after_merging() -> None:
    parsed = merge_cost_types(
        [record(27, "Storage", "x", "1")],
        [],
        days=[dt.date(2025, 2, 27)],
        as_of=dt.date(2025, 3, 5),
    )
    assert parsed.frame["is_estimated"].tolist() == [True]
    assert parsed.estimated_by_day == {dt.date(2025, 2, 27): True}


def test_the_two_cost_types_disagreeing_on_currency_is_refused() -> None:
    usd = CostRecord(dt.date(2025, 2, 1), "Storage", "x", Decimal(1), Decimal(1), "USD")
    with pytest.raises(ProviderDataError, match="disagree on the currency"):
        merge_cost_types(
            [usd], [record(1, "Storage", "x", "1")], days=[], as_of=dt.date(2025, 3, 10)
        )


def test_a_key_repeated_within_one_cost_type_is_refused() -> None:
    twice = [record(1, "Storage", "x", "1"), record(1, "Storage", "x", "2")]
    with pytest.raises(ProviderDataError, match="ActualCost rows repeat"):
        merge_cost_types(twice, [], days=[], as_of=dt.date(2025, 3, 10))


def test_no_rows_merge_into_an_empty_frame_with_the_parsed_columns() -> None:
    parsed = merge_cost_types([], [], days=[dt.date(2025, 2, 1)], as_of=dt.date(2025, 2, 2))
    assert parsed.frame.empty
    assert list(parsed.frame.columns) == list(PARSED_COLUMNS)
    assert parsed.estimated_by_day == {dt.date(2025, 2, 1): True}
