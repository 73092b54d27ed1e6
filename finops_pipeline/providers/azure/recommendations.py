"""Azure Advisor's cost recommendations, as normalised records (pure parsing, no HTTP).

Advisor lists a subscription's recommendations at
``GET /subscriptions/{id}/providers/Microsoft.Advisor/recommendations`` (``$filter=Category eq
'Cost'``). Each item's ``properties`` carry the recommendation type (``recommendationTypeId``),
the resource it is about (``resourceMetadata.resourceId``), a ``shortDescription`` and, for
cost recommendations, string-valued ``extendedProperties`` with the savings:
``savingsAmount`` (monthly), ``annualSavingsAmount`` and ``savingsCurrency``.

How items become records:

* **Identity.** The recommendation's own name is a GUID Advisor may reissue; the record's
  resource id is the impacted resource's id (lower-cased: ARM ids are case-insensitive and
  Advisor's casing varies) plus the recommendation type, and for a reservation or savings plan
  the SKU, region, scope, term and look-back period it is for.
* **Kind.** The VM and scale-set right-size types are :data:`KIND_RIGHTSIZE`, or
  :data:`KIND_TERMINATE` when their ``targetSku`` is ``Shutdown``; the reservation and savings
  plan types are :data:`KIND_COMMITMENT`; any other cost type is ``advisor_cost``.
* **Alternatives.** Advisor lists one purchase recommendation per term (``P1Y``, ``P3Y``) and
  look-back period (7, 30 or 60 days). They are alternatives, so summing them would
  overstate the savings: only one term and look-back period is kept (one year and 30 days by
  default, like the AWS Savings Plans query; the Azure portal shows three years).
* **Savings.** ``savingsAmount`` is monthly; without it, a twelfth of ``annualSavingsAmount``
  (rounded to a millionth when it does not terminate). A cost recommendation with no amount at
  all (Advisor has some, e.g. for idle resources it cannot price) is kept at 0: it is still an
  action the provider recommends, and tracking it lets a refresh resolve it; a 0 adds nothing
  to any total. Its currency is the one the subscription's other recommendations use, else USD.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, InvalidOperation, localcontext
from typing import Any

from finops_pipeline.constants import PROVIDER_AZURE
from finops_pipeline.errors import ProviderDataError
from finops_pipeline.insights.recommendations import (
    KIND_COMMITMENT,
    KIND_RIGHTSIZE,
    KIND_TERMINATE,
    Recommendation,
)

ADVISOR_SOURCE = "advisor"
COST_CATEGORY = "Cost"
#: The server-side filter: only cost recommendations are listed (fewer pages).
COST_FILTER = "Category eq 'Cost'"
#: A cost recommendation Advisor has no shared kind for (unattached disks, idle gateways...).
KIND_ADVISOR_COST = "advisor_cost"
FALLBACK_CURRENCY = "USD"
#: Where a twelfth of an annual amount is rounded when it does not terminate.
_MONTHLY_FROM_ANNUAL_PLACES = Decimal("0.000001")

#: "Right-size or shutdown underutilized virtual machines" and "... virtual machine scale sets".
VM_RIGHTSIZE_TYPE = "e10b1381-5f0a-47ff-8c7b-37bd13d7c974"
VMSS_RIGHTSIZE_TYPE = "94aea435-ef39-493f-a547-8408092c22a7"
RIGHTSIZE_TYPES = frozenset({VM_RIGHTSIZE_TYPE, VMSS_RIGHTSIZE_TYPE})
#: "Buy virtual machine reserved instances to save money over pay-as-you-go costs".
VM_RESERVED_INSTANCE_TYPE = "84b1a508-fc21-49da-979e-96894f1665df"
#: The reservation and savings plan purchase types: those Microsoft's Resource Graph sample
#: "Get active cost recommendations" narrows by ``term`` and ``lookbackPeriod``.
COMMITMENT_TYPES = frozenset(
    {
        "0169a2e1-c7bf-4c37-90b8-0714811c82d3",
        "06ad499a-0952-48d3-b061-ec81c9cabb8b",
        "0d524e8d-4cfd-4db5-9f91-8b4bb5235a8e",
        "0eb54047-acd9-4f26-8ffb-8cec713782d6",
        "10aedd06-621e-4b4f-a45c-5256573e0191",
        "148cdd60-97e8-426b-a7b9-141b7cb4bc2f",
        "171f87ad-4ead-42fc-8f32-a3b18d451837",
        "1b8c5187-32a6-4a2f-8ca1-b0b7d6ce9e86",
        "32755df6-aa2f-48d7-9ab7-92b8a80352ea",
        "3327646a-c325-417f-a3e3-36ae7119da69",
        "3f6c5689-6a05-4896-a6e0-c6f8a22a44c2",
        "407b6ad6-8e0b-40e7-9384-643520cae0ed",
        "5b8ddf04-be28-44ec-ab2c-a63a34d1de13",
        "680a5388-28aa-44e8-88af-32e3598dc869",
        "6dcd6657-7a07-404a-b462-db76946f6a97",
        VM_RESERVED_INSTANCE_TYPE,
        "885cd4f5-dfa0-4d68-bbfd-00f89fc2b69c",
        "8ee30d6b-2c73-452a-b4ad-e4386cd6f7d0",
        "a205074f-8049-48b3-903f-556f5e530ae3",
        "a8fd63ce-4600-43eb-af33-a6d5481f5930",
        "db621e98-4a20-4942-b174-c455dc71dbae",
        "f0382960-6906-4b0d-add3-ed12690bff31",
        "89515250-1243-43d1-b4e7-f9437cedffd8",
        "9ed827e8-2a1c-45f3-93f0-df6962034a33",
        "dadc1876-61e3-42fc-a70e-e863bbc460b6",
        "7ac18a52-fb6c-4931-8d9d-ef5efff6acf0",
    }
)
#: What narrows a purchase recommendation, in the order its identity lists them.
_COMMITMENT_IDENTITY = (
    ("reservedResourceType",),
    ("displaySKU", "sku", "vmSize"),
    ("region", "location"),
    ("scope",),
    ("term",),
    ("lookbackPeriod",),
)
_TERMS = {"P1Y": "1 year", "P3Y": "3 years", "P5Y": "5 years"}
_SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class CommitmentChoice:
    """Which of Advisor's alternative purchase recommendations to keep."""

    term: str = "P1Y"
    lookback_days: str = "30"

    def keeps(self, extended: Mapping[str, Any]) -> bool:
        """Whether a purchase recommendation is for this term and look-back period; one that
        names neither (older types) is kept."""
        term = extended.get("term")
        lookback = extended.get("lookbackPeriod")
        return (term is None or str(term) == self.term) and (
            lookback is None or str(lookback) == self.lookback_days
        )


DEFAULT_COMMITMENT_CHOICE = CommitmentChoice()


def page_items(text: str) -> tuple[list[Mapping[str, Any]], str | None]:
    """One list page's items and its ``nextLink``; amounts stay strings (no float parsing)."""
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError:
        raise ProviderDataError(
            "Azure Advisor sent a recommendations page that is not JSON; nothing was stored "
            "for this subscription. Retry the refresh; report it if it persists."
        ) from None
    value = document.get("value") if isinstance(document, dict) else None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ProviderDataError(
            "Azure Advisor sent a recommendations page without a 'value' list; nothing was "
            "stored for this subscription. Retry the refresh; report it if it persists."
        )
    link = document.get("nextLink")
    if link is not None and not isinstance(link, str):
        raise ProviderDataError("Azure Advisor sent a nextLink that is not a string.")
    return value, link or None


def parse_pages(
    pages: Iterable[str],
    *,
    subscription_id: str,
    commitments: CommitmentChoice = DEFAULT_COMMITMENT_CHOICE,
) -> list[Recommendation]:
    """Every page's cost recommendations as records."""
    items = [item for text in pages for item in page_items(text)[0]]
    return parse_items(items, subscription_id=subscription_id, commitments=commitments)


def parse_items(
    items: Sequence[Mapping[str, Any]],
    *,
    subscription_id: str,
    commitments: CommitmentChoice = DEFAULT_COMMITMENT_CHOICE,
) -> list[Recommendation]:
    """The cost recommendations among ``items``; other categories are skipped (the filter
    asks for Cost only, but a list that ignored it must not store security advice)."""
    costs = [item for item in items if _properties(item).get("category") == COST_CATEGORY]
    fallback = _usual_currency(costs)
    records = []
    for item in costs:
        extended = _extended(item)
        if _is_commitment(item) and not commitments.keeps(extended):
            continue
        records.append(parse_item(item, subscription_id=subscription_id, currency=fallback))
    return records


def parse_item(
    item: Mapping[str, Any], *, subscription_id: str, currency: str = FALLBACK_CURRENCY
) -> Recommendation:
    """One cost recommendation as a record; ``currency`` is used when it names none."""
    properties = _properties(item)
    type_id = str(properties.get("recommendationTypeId") or "").strip().lower()
    if not type_id:
        raise ProviderDataError(
            f"Azure Advisor sent cost recommendation {_name(item)} without a "
            "recommendationTypeId; nothing was stored for this subscription."
        )
    extended = _extended(item)
    resource = _resource(item)
    label = f"{resource} ({type_id})"
    description = properties.get("shortDescription") or {}
    problem = str(description.get("problem") or "").strip()
    solution = str(description.get("solution") or "").strip()
    name = str(properties.get("impactedValue") or resource.rsplit("/", 1)[-1])
    if _is_commitment(item):
        parts = []
        for keys in _COMMITMENT_IDENTITY:
            value = next((extended[key] for key in keys if extended.get(key)), None)
            if value is not None:
                parts.append(str(value).strip().lower())
        kind = KIND_COMMITMENT
        resource_id = "/".join([resource, type_id, *parts])
        current, recommended = _commitment_text(extended, problem, solution)
    elif type_id in RIGHTSIZE_TYPES:
        current_sku = str(extended.get("currentSku") or "").strip()
        target_sku = str(extended.get("targetSku") or "").strip()
        resource_id = f"{resource}/{type_id}"
        current = f"{current_sku or 'current size'} ({name})"
        if target_sku.lower() == _SHUTDOWN or not target_sku:
            kind, recommended = KIND_TERMINATE, "shut down"
        else:
            kind, recommended = KIND_RIGHTSIZE, target_sku
    else:
        kind = KIND_ADVISOR_COST
        resource_id = f"{resource}/{type_id}"
        current = problem or f"{properties.get('impactedField') or 'resource'} {name}"
        recommended = solution or problem or "see Azure Advisor"
    return Recommendation(
        provider=PROVIDER_AZURE,
        account=subscription_id,
        source=ADVISOR_SOURCE,
        kind=kind,
        resource_id=resource_id,
        current=current,
        recommended=recommended,
        estimated_monthly_savings=monthly_savings(extended, label),
        currency=_currency(extended.get("savingsCurrency"), currency, label),
        raw=_jsonable(item),
    )


def monthly_savings(extended: Mapping[str, Any], label: str) -> Decimal:
    """``savingsAmount``, else a twelfth of ``annualSavingsAmount``, else 0 (see the module)."""
    monthly = extended.get("savingsAmount")
    if monthly not in (None, ""):
        return _amount(monthly, "savingsAmount", label)
    annual = extended.get("annualSavingsAmount")
    if annual not in (None, ""):
        yearly = _amount(annual, "annualSavingsAmount", label)
        with localcontext() as context:
            context.clear_flags()
            twelfth = yearly / 12
            exact = not context.flags[Inexact]
        if not exact:
            twelfth = twelfth.quantize(_MONTHLY_FROM_ANNUAL_PLACES, rounding=ROUND_HALF_EVEN)
        return twelfth
    return Decimal(0)


# --- helpers -----------------------------------------------------------------------------


def _properties(item: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = item.get("properties")
    if not isinstance(properties, dict):
        raise ProviderDataError(
            f"Azure Advisor sent recommendation {_name(item)} without properties; nothing was "
            "stored for this subscription."
        )
    return properties


def _extended(item: Mapping[str, Any]) -> Mapping[str, Any]:
    extended = _properties(item).get("extendedProperties") or {}
    if not isinstance(extended, dict):
        raise ProviderDataError(
            f"Azure Advisor sent recommendation {_name(item)} with extendedProperties that are "
            "not an object; nothing was stored for this subscription."
        )
    return extended


def _is_commitment(item: Mapping[str, Any]) -> bool:
    properties = _properties(item)
    type_id = str(properties.get("recommendationTypeId") or "").strip().lower()
    extended = _extended(item)
    return type_id in COMMITMENT_TYPES or ("term" in extended and "lookbackPeriod" in extended)


def _name(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    return repr(name) if isinstance(name, str) and len(name) <= 64 else "(unnamed)"


def _resource(item: Mapping[str, Any]) -> str:
    metadata = _properties(item).get("resourceMetadata") or {}
    resource = metadata.get("resourceId") if isinstance(metadata, dict) else None
    if not resource:
        # The recommendation's own id is "{resource}/providers/Microsoft.Advisor/
        # recommendations/{name}".
        own = str(item.get("id") or "")
        marker = own.lower().rfind("/providers/microsoft.advisor/recommendations/")
        resource = own[:marker] if marker > 0 else None
    if not resource:
        raise ProviderDataError(
            f"Azure Advisor sent cost recommendation {_name(item)} without the resource it is "
            "about; nothing was stored for this subscription."
        )
    return str(resource).strip().rstrip("/").lower()


def _amount(value: Any, what: str, label: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise ProviderDataError(
            f"Azure Advisor sent {what} {str(value)[:32]!r} for {label}, not a number; nothing "
            "was stored for this subscription."
        )
    return amount


def _currency(value: Any, fallback: str, label: str) -> str:
    if value in (None, ""):
        return fallback
    code = str(value).strip().upper()
    if not (len(code) == 3 and code.isalpha() and code.isascii()):
        raise ProviderDataError(
            f"Azure Advisor sent savingsCurrency {str(value)[:16]!r} for {label}, not an ISO "
            "code; nothing was stored for this subscription."
        )
    return code


def _usual_currency(items: Iterable[Mapping[str, Any]]) -> str:
    seen = Counter(
        str(code).strip().upper()
        for item in items
        if (code := _extended(item).get("savingsCurrency"))
    )
    valid = [(count, code) for code, count in seen.items() if len(code) == 3 and code.isalpha()]
    return max(valid)[1] if valid else FALLBACK_CURRENCY


def _commitment_text(extended: Mapping[str, Any], problem: str, solution: str) -> tuple[str, str]:
    sku = extended.get("displaySKU") or extended.get("sku") or extended.get("vmSize")
    region = extended.get("region") or extended.get("location")
    where = f" in {region}" if region else ""
    resource_type = extended.get("reservedResourceType")
    current = (
        f"on-demand {sku}{where}"
        if sku
        else (f"on-demand {resource_type}{where}" if resource_type else problem or "on-demand")
    )
    term = _TERMS.get(str(extended.get("term") or ""), extended.get("term"))
    quantity = extended.get("displayQty") or extended.get("qty")
    scope = extended.get("scope")
    if sku:
        recommended = (
            f"reserve {f'{quantity} x ' if quantity else ''}{sku}{where}"
            f"{f', {term}' if term else ''}{f', {str(scope).lower()} scope' if scope else ''}"
        )
    else:
        recommended = solution or "buy the reservation Azure Advisor recommends"
    return current, recommended


def _jsonable(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as plain JSON values (Decimals parsed from numbers become their text)."""
    return json.loads(json.dumps(item, default=str))
