"""Advisor cost recommendations as records: pure parsing of the list's raw JSON."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from finops_pipeline.errors import ProviderDataError
from finops_pipeline.providers.azure.recommendations import (
    ADVISOR_SOURCE,
    KIND_ADVISOR_COST,
    VM_RESERVED_INSTANCE_TYPE,
    VM_RIGHTSIZE_TYPE,
    CommitmentChoice,
    page_items,
    parse_item,
    parse_items,
    parse_pages,
)
from tests.providers.azure.conftest import example_body_text

SUBSCRIPTION = "9b3c6e1a-2f4d-4b8e-a1c3-5d7e9f0a1b2c"
VM = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/"
    "Microsoft.Compute/virtualMachines/web-01"
)


def advisor_item(
    *,
    name: str = "0d6f5ba5-34c2-4d6a-a4f1-6c2d63f8e3a1",
    type_id: str = VM_RIGHTSIZE_TYPE,
    resource: str = VM,
    impacted_field: str = "Microsoft.Compute/virtualMachines",
    impacted_value: str = "web-01",
    extended: dict[str, str] | None = None,
    category: str = "Cost",
) -> dict[str, Any]:
    """A list item in the official example's envelope (2020-01-01), with cost properties."""
    properties: dict[str, Any] = {
        "category": category,
        "impact": "High",
        "impactedField": impacted_field,
        "impactedValue": impacted_value,
        "lastUpdated": "2025-03-02T04:12:00.3216408Z",
        "recommendationTypeId": type_id,
        "risk": "None",
        "shortDescription": {
            "problem": "Right-size or shutdown underutilized virtual machines",
            "solution": "Right-size or shutdown underutilized virtual machines",
        },
        "resourceMetadata": {"resourceId": resource, "source": resource},
    }
    if extended is not None:
        properties["extendedProperties"] = extended
    return {
        "id": f"{resource}/providers/Microsoft.Advisor/recommendations/{name}",
        "name": name,
        "type": "Microsoft.Advisor/recommendations",
        "properties": properties,
    }


RESIZE = {
    "currentSku": "Standard_D4s_v5",
    "targetSku": "Standard_D2s_v5",
    "MaxCpuP95": "7.4",
    "savingsAmount": "70.08",
    "annualSavingsAmount": "840.96",
    "savingsCurrency": "USD",
}


def reservation(term: str, lookback: str, savings: str) -> dict[str, Any]:
    return advisor_item(
        name=f"ri-{term}-{lookback}",
        type_id=VM_RESERVED_INSTANCE_TYPE,
        resource=f"/subscriptions/{SUBSCRIPTION}",
        impacted_field="Microsoft.Subscriptions/subscriptions",
        impacted_value=SUBSCRIPTION,
        extended={
            "reservedResourceType": "virtualmachines",
            "displaySKU": "Standard_D4s_v5",
            "displayQty": "3",
            "region": "westeurope",
            "scope": "Single",
            "term": term,
            "lookbackPeriod": lookback,
            "savingsAmount": savings,
            "annualSavingsAmount": str(Decimal(savings) * 12),
            "savingsCurrency": "eur",
        },
    )


def test_the_official_example_parses_and_holds_no_cost_recommendation() -> None:
    items, link = page_items(example_body_text("Recommendations_List.json"))
    assert [item["name"] for item in items] == ["recGUID1", "recGUID2"]
    assert link is not None and "$skiptoken=skiptoken" in link
    # HighAvailability and Security: never stored as cost recommendations.
    assert parse_items(items, subscription_id=SUBSCRIPTION) == []
    as_cost = copy.deepcopy(items[0])
    as_cost["properties"]["category"] = "Cost"
    with pytest.raises(ProviderDataError, match="recommendationTypeId"):
        parse_items([as_cost], subscription_id=SUBSCRIPTION)


def test_a_resize_is_a_rightsize_with_exact_monthly_savings_and_a_stable_identity() -> None:
    first = parse_item(advisor_item(extended=RESIZE), subscription_id=SUBSCRIPTION)
    assert first.provider == "azure" and first.source == ADVISOR_SOURCE
    assert first.account == SUBSCRIPTION
    assert first.kind == "rightsize"
    assert first.current == "Standard_D4s_v5 (web-01)" and first.recommended == "Standard_D2s_v5"
    assert first.estimated_monthly_savings == Decimal("70.08") and first.currency == "USD"
    assert first.resource_id == f"{VM.lower()}/{VM_RIGHTSIZE_TYPE}"
    assert first.raw["properties"]["extendedProperties"]["savingsAmount"] == "70.08"
    # Next week Advisor reissues it under another GUID, with the id's casing changed.
    again = advisor_item(name="f1e2d3c4-0000-4000-8000-000000000001", extended=RESIZE)
    again["properties"]["resourceMetadata"]["resourceId"] = VM.replace("rg-web", "RG-WEB")
    assert parse_item(again, subscription_id=SUBSCRIPTION).key == first.key


def test_a_shutdown_is_a_terminate_saving_the_whole_machine() -> None:
    shutdown = {**RESIZE, "targetSku": "Shutdown", "savingsAmount": "140.16"}
    record = parse_item(advisor_item(extended=shutdown), subscription_id=SUBSCRIPTION)
    assert (record.kind, record.recommended) == ("terminate", "shut down")
    assert record.estimated_monthly_savings == Decimal("140.16")


def test_only_one_term_and_lookback_of_the_reservation_alternatives_is_kept() -> None:
    items = [
        reservation(term, lookback, savings)
        for term, lookback, savings in [
            ("P1Y", "7", "120.50"),
            ("P1Y", "30", "140.25"),
            ("P1Y", "60", "138.00"),
            ("P3Y", "30", "230.10"),
        ]
    ]
    (one_year,) = parse_items(items, subscription_id=SUBSCRIPTION)
    assert one_year.kind == "commitment_purchase"
    assert one_year.estimated_monthly_savings == Decimal("140.25")
    assert one_year.currency == "EUR"
    assert one_year.current == "on-demand Standard_D4s_v5 in westeurope"
    assert one_year.recommended == "reserve 3 x Standard_D4s_v5 in westeurope, 1 year, single scope"
    assert one_year.resource_id == (
        f"/subscriptions/{SUBSCRIPTION}/{VM_RESERVED_INSTANCE_TYPE}/"
        "virtualmachines/standard_d4s_v5/westeurope/single/p1y/30"
    )
    (three_years,) = parse_items(
        items, subscription_id=SUBSCRIPTION, commitments=CommitmentChoice("P3Y", "30")
    )
    assert three_years.estimated_monthly_savings == Decimal("230.10")
    assert three_years.key != one_year.key


def test_annual_savings_only_are_divided_by_twelve_in_decimal() -> None:
    exact = {**RESIZE, "savingsAmount": "", "annualSavingsAmount": "1261.44"}
    assert parse_item(
        advisor_item(extended=exact), subscription_id=SUBSCRIPTION
    ).estimated_monthly_savings == Decimal("105.12")
    repeating = {k: v for k, v in RESIZE.items() if k != "savingsAmount"}
    repeating["annualSavingsAmount"] = "1000"
    assert parse_item(
        advisor_item(extended=repeating), subscription_id=SUBSCRIPTION
    ).estimated_monthly_savings == Decimal("83.333333")


def test_a_cost_recommendation_without_an_amount_is_kept_at_zero_in_the_usual_currency() -> None:
    disk = advisor_item(
        type_id="48eda464-1485-4dcf-a674-d0905df5054a",
        resource=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",
        impacted_field="Microsoft.Compute/disks",
        impacted_value="d1",
    )
    disk["properties"]["shortDescription"] = {
        "problem": "Review disks that aren't attached to a VM",
        "solution": "Delete the disk if it is no longer needed",
    }
    euro = reservation("P1Y", "30", "10.00")
    records = parse_items([disk, euro], subscription_id=SUBSCRIPTION)
    record = next(r for r in records if r.kind == KIND_ADVISOR_COST)
    assert record.estimated_monthly_savings == Decimal(0)
    assert record.currency == "EUR"  # what the subscription's other recommendations use
    assert record.current == "Review disks that aren't attached to a VM"
    assert record.recommended == "Delete the disk if it is no longer needed"
    (alone,) = parse_items([disk], subscription_id=SUBSCRIPTION)
    assert alone.currency == "USD"


def test_pages_are_read_with_amounts_as_written() -> None:
    page_one = json.dumps({"value": [advisor_item(extended=RESIZE)], "nextLink": "https://x/2"})
    page_two = json.dumps({"value": [reservation("P1Y", "30", "0.1234567890123456789")]})
    records = parse_pages([page_one, page_two], subscription_id=SUBSCRIPTION)
    assert [r.kind for r in records] == ["rightsize", "commitment_purchase"]
    assert records[1].estimated_monthly_savings == Decimal("0.1234567890123456789")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<html>gateway</html>", "not JSON"),
        ('{"error": {"code": "x"}}', "without a 'value' list"),
        ('{"value": [1, 2]}', "without a 'value' list"),
        ('{"value": [{"name": "n"}]}', "without properties"),
    ],
)
def test_malformed_pages_are_typed_data_errors(text: str, match: str) -> None:
    with pytest.raises(ProviderDataError, match=match):
        parse_pages([text], subscription_id=SUBSCRIPTION)


@pytest.mark.parametrize(
    ("extended", "match"),
    [
        ({**RESIZE, "savingsAmount": "about 70"}, "savingsAmount 'about 70'"),
        ({**RESIZE, "savingsAmount": "NaN"}, "not a number"),
        ({**RESIZE, "savingsCurrency": "US Dollar"}, "not an ISO code"),
    ],
)
def test_bad_amounts_and_currencies_are_typed_data_errors(
    extended: dict[str, str], match: str
) -> None:
    with pytest.raises(ProviderDataError, match=match):
        parse_item(advisor_item(extended=extended), subscription_id=SUBSCRIPTION)


def test_without_resource_metadata_the_recommendation_id_names_the_resource() -> None:
    item = advisor_item(extended=RESIZE)
    del item["properties"]["resourceMetadata"]
    record = parse_item(item, subscription_id=SUBSCRIPTION)
    assert record.resource_id == f"{VM.lower()}/{VM_RIGHTSIZE_TYPE}"
    item["id"] = "not-an-advisor-id"
    with pytest.raises(ProviderDataError, match="without the resource"):
        parse_item(item, subscription_id=SUBSCRIPTION)
