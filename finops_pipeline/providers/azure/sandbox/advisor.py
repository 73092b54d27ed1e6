"""Azure Advisor cost recommendations for sandbox subscriptions, in the 2020-01-01 list shape.

Pure and deterministic: everything derives from the seed, the subscription and the pull, so
every process computes the same answer. Each subscription runs a fleet of VMs; about a third
are underused. Those with almost no CPU are to be shut down, the others resized one size down
(``Right-size or shutdown underutilized virtual machines``). The fleet's most common size gets
a one-VM-per-eight reservation recommendation (``Buy virtual machine reserved instances``),
listed, as Advisor does, once per term (P1Y, P3Y) and look-back period (7, 30, 60 days). One
unattached disk is listed without a savings amount (``Review disks that aren't attached``).

Week by week some VMs recover and others become idle; and one recommendation is present only
in even pull generations, so a re-pulled demo resolves (and later reopens) it. Recommendation
names are fresh GUIDs every generation, as Advisor's are not a stable identity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from finops_pipeline.providers.aws.sandbox.generator import Pull
from finops_pipeline.providers.azure.recommendations import (
    COST_CATEGORY,
    VM_RESERVED_INSTANCE_TYPE,
    VM_RIGHTSIZE_TYPE,
)
from finops_pipeline.providers.azure.sandbox.catalogue import SandboxSubscription

UNATTACHED_DISK_TYPE = "48eda464-1485-4dcf-a674-d0905df5054a"
HOURS_PER_MONTH = Decimal(730)
REGIONS = ("eastus", "westeurope", "northeurope")
_UNDERUSED_SHARE = 0.35
_RECOVERED_WEEKLY = 0.2
_SHUTDOWN_CPU = 3.0
#: Discount of a reservation on pay-as-you-go, by term.
_RESERVATION_DISCOUNT = {"P1Y": Decimal("0.40"), "P3Y": Decimal("0.62")}
_LOOKBACKS = ("7", "30", "60")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class VmSize:
    """Pay-as-you-go Linux price per hour (USD) and the size one step down, if any."""

    hourly: Decimal
    smaller: str | None


VM_SIZES: dict[str, VmSize] = {
    "Standard_D8s_v5": VmSize(Decimal("0.384"), "Standard_D4s_v5"),
    "Standard_D4s_v5": VmSize(Decimal("0.192"), "Standard_D2s_v5"),
    "Standard_D2s_v5": VmSize(Decimal("0.096"), None),
    "Standard_E8s_v5": VmSize(Decimal("0.504"), "Standard_E4s_v5"),
    "Standard_E4s_v5": VmSize(Decimal("0.252"), None),
    "Standard_B2ms": VmSize(Decimal("0.0832"), None),
}
_FLEET_SIZES = (
    "Standard_D4s_v5",
    "Standard_D4s_v5",
    "Standard_D2s_v5",
    "Standard_D8s_v5",
    "Standard_E8s_v5",
    "Standard_B2ms",
)
#: Euros per dollar for subscriptions billed in EUR.
_EUR_PER_USD = Decimal("0.92")


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _uuid(*parts: object) -> str:
    text = hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:32]
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _week(day: dt.date) -> int:
    return (day - dt.date(2024, 1, 1)).days // 7


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def fleet_size(seed: int, subscription: SandboxSubscription) -> int:
    """How many VMs the subscription runs (production-like names run more)."""
    base = 60 if "production" in subscription.name else 24
    return base + int(_unit(seed, subscription.subscription_id, "fleet") * 12)


def cost_recommendations(
    seed: int, subscription: SandboxSubscription, pull: Pull
) -> list[dict[str, Any]]:
    """The subscription's current cost recommendations, in Advisor's list order (stable)."""
    sub = subscription.subscription_id
    week = _week(pull.as_of)
    updated = f"{pull.as_of.isoformat()}T04:{int(_unit(seed, sub, 'minute') * 60):02d}:00Z"
    rate = _EUR_PER_USD if subscription.currency == "EUR" else Decimal(1)
    currency = subscription.currency
    items: list[dict[str, Any]] = []
    sizes: Counter[tuple[str, str]] = Counter()
    for index in range(fleet_size(seed, subscription)):
        size = _FLEET_SIZES[int(_unit(seed, sub, index, "size") * len(_FLEET_SIZES))]
        region = REGIONS[int(_unit(seed, sub, index, "region") * len(REGIONS))]
        sizes[(size, region)] += 1
        if _unit(seed, sub, index, "underused") >= _UNDERUSED_SHARE:
            continue
        if _unit(seed, sub, index, "recovered", week) < _RECOVERED_WEEKLY:
            continue
        name = f"vm-{subscription.name.split('-')[-1][:4]}-{index:03d}"
        group = f"rg-{subscription.name.split('-')[-1]}-{'app' if index % 3 else 'data'}"
        resource = (
            f"/subscriptions/{sub}/resourceGroups/{group}/providers/"
            f"Microsoft.Compute/virtualMachines/{name}"
        )
        cpu = 1 + 24 * _unit(seed, sub, index, "cpu", week // 2)
        spec = VM_SIZES[size]
        monthly = spec.hourly * HOURS_PER_MONTH * rate
        if cpu < _SHUTDOWN_CPU or spec.smaller is None:
            target, savings = "Shutdown", monthly
        else:
            target = spec.smaller
            savings = monthly - VM_SIZES[target].hourly * HOURS_PER_MONTH * rate
        items.append(
            _item(
                seed,
                pull,
                resource=resource,
                type_id=VM_RIGHTSIZE_TYPE,
                impacted_field="Microsoft.Compute/virtualMachines",
                impacted_value=name,
                updated=updated,
                impact="High",
                problem="Right-size or shutdown underutilized virtual machines",
                solution="Right-size or shutdown underutilized virtual machines",
                extended={
                    "currentSku": size,
                    "targetSku": target,
                    "MaxCpuP95": f"{cpu:.1f}",
                    "MaxMemoryP95": f"{min(cpu * 2.2, 95):.1f}",
                    "MaxTotalNetworkP95": f"{cpu / 4:.2f}",
                    "regionId": region,
                    "roleName": name,
                    "subscriptionId": sub,
                    "savingsAmount": _money(savings),
                    "annualSavingsAmount": _money(savings * 12),
                    "savingsCurrency": currency,
                },
            )
        )
    if items and pull.generation % 2:
        # One underused VM is busy in odd generations: a re-pull resolves its recommendation.
        del items[int(_unit(seed, sub, "flicker", week) * len(items))]
    (size, region), count = max(sizes.items(), key=lambda entry: (entry[1], entry[0]))
    for term, discount in _RESERVATION_DISCOUNT.items():
        for lookback in _LOOKBACKS:
            steady = max(1, count // 8 - (1 if lookback == "7" else 0))
            savings = VM_SIZES[size].hourly * HOURS_PER_MONTH * rate * discount * steady
            items.append(
                _item(
                    seed,
                    pull,
                    resource=f"/subscriptions/{sub}",
                    type_id=VM_RESERVED_INSTANCE_TYPE,
                    impacted_field="Microsoft.Subscriptions/subscriptions",
                    impacted_value=sub,
                    updated=updated,
                    impact="High",
                    problem="Buy virtual machine reserved instances to save money over "
                    "pay-as-you-go costs",
                    solution="Buy virtual machine reserved instances to save money over "
                    "pay-as-you-go costs",
                    extended={
                        "reservedResourceType": "virtualmachines",
                        "displaySKU": size,
                        "vmSize": size,
                        "displayQty": str(steady),
                        "qty": str(steady),
                        "region": region,
                        "location": region,
                        "scope": "Single",
                        "term": term,
                        "lookbackPeriod": lookback,
                        "subId": sub,
                        "savingsAmount": _money(savings),
                        "annualSavingsAmount": _money(savings * 12),
                        "savingsCurrency": currency,
                    },
                )
            )
    disk = f"disk-{subscription.name.split('-')[-1][:4]}-orphan"
    items.append(
        _item(
            seed,
            pull,
            resource=(
                f"/subscriptions/{sub}/resourceGroups/rg-{subscription.name.split('-')[-1]}-data"
                f"/providers/Microsoft.Compute/disks/{disk}"
            ),
            type_id=UNATTACHED_DISK_TYPE,
            impacted_field="Microsoft.Compute/disks",
            impacted_value=disk,
            updated=updated,
            impact="Medium",
            problem="Review disks that aren't attached to a VM and evaluate if you still need "
            "the disks",
            solution="Delete the disk after taking a snapshot, if it is no longer needed",
            extended={},
        )
    )
    return items


def _item(
    seed: int,
    pull: Pull,
    *,
    resource: str,
    type_id: str,
    impacted_field: str,
    impacted_value: str,
    updated: str,
    impact: str,
    problem: str,
    solution: str,
    extended: dict[str, str],
) -> dict[str, Any]:
    term = f"{extended.get('term', '')}{extended.get('lookbackPeriod', '')}"
    name = _uuid(seed, resource, type_id, term, pull.generation)
    properties: dict[str, Any] = {
        "category": COST_CATEGORY,
        "impact": impact,
        "impactedField": impacted_field,
        "impactedValue": impacted_value,
        "lastUpdated": updated,
        "recommendationTypeId": type_id,
        "shortDescription": {"problem": problem, "solution": solution},
        "resourceMetadata": {"resourceId": resource, "source": resource},
    }
    if extended:
        properties["extendedProperties"] = extended
    return {
        "id": f"{resource}/providers/Microsoft.Advisor/recommendations/{name}",
        "name": name,
        "type": "Microsoft.Advisor/recommendations",
        "properties": properties,
    }
