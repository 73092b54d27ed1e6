"""Rightsizing and Savings Plans recommendations for sandbox accounts, in Cost Explorer's JSON.

Pure request-in, response-out logic like :mod:`finops_pipeline.providers.aws.sandbox.service`; the hook
feeds it the body botocore serialised. Everything derives from the account's synthetic
profile and the pull's ``as_of`` day, so every process computes the same answer:

* **Rightsizing.** Each EC2 ``BoxUsage`` line runs as many instances as its cost pays for.
  About one in six is idle or oversized; within those, each week some recover and others
  appear, and some run fewer hours, so a weekly refresh sees new, updated and resolved
  recommendations. Oversized instances step down a size in their family (``MODIFY``); idle
  ones, and any at their family's smallest size, are to be stopped (``TERMINATE``).
* **Savings Plans.** The commitment covers 80% of the lowest hourly on-demand spend the
  plan type applies to over the lookback period, at a discount by plan, term and payment.
  ``LINKED`` scope gives one detail per member account; EC2 Instance Savings Plans, one per
  region and instance family.

Both page with ``PageSize`` and ``NextPageToken`` like the real APIs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from finops_pipeline.providers.aws.sandbox.catalogue import organisation_members
from finops_pipeline.providers.aws.sandbox.generator import CostRow, Pull, SandboxGenerator
from finops_pipeline.providers.aws.sandbox.service import CURRENCY, SandboxApiError
from finops_pipeline.providers.sandbox_draws import hex_id, unit, uuid_id

RIGHTSIZING_OPERATION = "GetRightsizingRecommendation"
SAVINGS_PLANS_OPERATION = "GetSavingsPlansPurchaseRecommendation"
OPERATIONS = frozenset({RIGHTSIZING_OPERATION, SAVINGS_PLANS_OPERATION})
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 6000
HOURS_PER_MONTH = 730
_INSTANCES_PER_LINE = 400
_IDLE_SHARE = 0.17
_RECOVERED_WEEKLY = 0.2

EC2_SERVICE = "Amazon Elastic Compute Cloud - Compute"


@dataclass(frozen=True)
class InstanceType:
    """On-demand Linux price and the sizes shown in ResourceDetails."""

    hourly: float
    vcpu: str
    memory: str
    network: str


INSTANCE_TYPES: dict[str, InstanceType] = {
    "m5.xlarge": InstanceType(0.192, "4", "16 GiB", "Up to 10 Gigabit"),
    "m5.large": InstanceType(0.096, "2", "8 GiB", "Up to 10 Gigabit"),
    "t3.large": InstanceType(0.0832, "2", "8 GiB", "Up to 5 Gigabit"),
    "t3.medium": InstanceType(0.0416, "2", "4 GiB", "Up to 5 Gigabit"),
    "t3.small": InstanceType(0.0208, "2", "2 GiB", "Up to 5 Gigabit"),
    "c6g.xlarge": InstanceType(0.136, "4", "8 GiB", "Up to 10 Gigabit"),
    "c6g.large": InstanceType(0.068, "2", "4 GiB", "Up to 10 Gigabit"),
}
#: One size down within the family; absent: already the family's smallest.
SMALLER_IN_FAMILY = {"m5.xlarge": "m5.large", "t3.medium": "t3.small", "c6g.xlarge": "c6g.large"}
#: What CROSS_INSTANCE_FAMILY may pick instead, for the family's smallest sizes.
SMALLER_ACROSS_FAMILIES = {"m5.large": "t3.large"}
#: Cost Explorer's region prefix of usage types, its region code and its display name.
REGIONS: dict[str, tuple[str, str]] = {
    "": ("us-east-1", "US East (N. Virginia)"),
    "USW2-": ("us-west-2", "US West (Oregon)"),
    "EUC1-": ("eu-central-1", "EU (Frankfurt)"),
    "EU-": ("eu-west-1", "EU (Ireland)"),
    "APN1-": ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    "APS2-": ("ap-southeast-2", "Asia Pacific (Sydney)"),
    "CAN1-": ("ca-central-1", "Canada (Central)"),
}
LOOKBACK_DAYS = {"SEVEN_DAYS": 7, "THIRTY_DAYS": 30, "SIXTY_DAYS": 60}
TERMS = {"ONE_YEAR": 1, "THREE_YEARS": 3}
PAYMENT_OPTIONS = {"NO_UPFRONT": 0.0, "PARTIAL_UPFRONT": 0.5, "ALL_UPFRONT": 1.0}
#: Discount on on-demand prices by plan type and term; paying upfront adds a little.
DISCOUNTS = {
    ("COMPUTE_SP", 1): 0.17,
    ("COMPUTE_SP", 3): 0.38,
    ("EC2_INSTANCE_SP", 1): 0.27,
    ("EC2_INSTANCE_SP", 3): 0.47,
    ("SAGEMAKER_SP", 1): 0.20,
    ("SAGEMAKER_SP", 3): 0.40,
    ("DATABASE_SP", 1): 0.15,
    ("DATABASE_SP", 3): 0.30,
}
UPFRONT_BONUS = 0.03
#: The usage each plan type covers: service and a usage-type fragment.
COVERED_USAGE: dict[str, tuple[tuple[str, str], ...]] = {
    "COMPUTE_SP": (
        (EC2_SERVICE, "BoxUsage:"),
        ("Amazon Elastic Container Service", "Fargate-"),
        ("AWS Lambda", "Lambda-GB-Second"),
    ),
    "EC2_INSTANCE_SP": ((EC2_SERVICE, "BoxUsage:"),),
    "SAGEMAKER_SP": (("Amazon SageMaker", "ml."),),
    "DATABASE_SP": (
        ("Amazon Relational Database Service", "InstanceUsage:"),
        ("Amazon DocumentDB (with MongoDB compatibility)", "InstanceUsage:"),
        ("Amazon Neptune", "InstanceUsage:"),
    ),
}
_COVERED_SHARE = 0.8


def _money(value: float) -> str:
    return f"{value:.3f}"


def _week(day: dt.date) -> int:
    """Weeks since an epoch Monday: recommendations are regenerated weekly."""
    return (day - dt.date(2024, 1, 1)).days // 7


def _region(usage_type: str) -> tuple[str, str, str]:
    prefix, _, name = usage_type.rpartition("BoxUsage:")
    code, display = REGIONS.get(prefix, REGIONS[""])
    return name, code, display


class RecommendationsSandbox:
    """GetRightsizingRecommendation and GetSavingsPlansPurchaseRecommendation over a generator."""

    def __init__(self, generator: SandboxGenerator) -> None:
        self.generator = generator
        # The pages of one sequence share their data; keep the last few computations.
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = compute()
        return self._cache[key]

    def answer(
        self, operation: str, body: dict[str, Any], *, caller: str, pull: Pull
    ) -> dict[str, Any]:
        """One page of ``operation``'s response, as Cost Explorer's JSON.

        Raises:
            SandboxApiError: the request is invalid or its token is bad.
        """
        if operation == RIGHTSIZING_OPERATION:
            return self.rightsizing(body, caller=caller, pull=pull)
        if operation == SAVINGS_PLANS_OPERATION:
            return self.savings_plans(body, caller=caller, pull=pull)
        raise SandboxApiError("UnsupportedOperation", f"The sandbox does not implement {operation}")

    # --- rightsizing ------------------------------------------------------------------

    def rightsizing(self, body: dict[str, Any], *, caller: str, pull: Pull) -> dict[str, Any]:
        if body.get("Service") != "AmazonEC2":
            raise SandboxApiError(
                "ValidationException", "Rightsizing recommendations support Service AmazonEC2"
            )
        configuration = body.get("Configuration") or {
            "RecommendationTarget": "SAME_INSTANCE_FAMILY",
            "BenefitsConsidered": True,
        }
        target = configuration.get("RecommendationTarget")
        if target not in {"SAME_INSTANCE_FAMILY", "CROSS_INSTANCE_FAMILY"}:
            raise SandboxApiError(
                "ValidationException", f"RecommendationTarget {target!r} is not valid"
            )
        cross_family = target != "SAME_INSTANCE_FAMILY"
        items = self._cached(
            (RIGHTSIZING_OPERATION, caller, pull, cross_family),
            lambda: self._rightsizing_items(caller, pull, cross_family=cross_family),
        )
        page, token = _page(items, body, pull, RIGHTSIZING_OPERATION, caller)
        total_savings = sum(_item_savings(item) for item in items)
        total_cost = sum(float(item["CurrentInstance"]["MonthlyCost"]) for item in items)
        response: dict[str, Any] = {
            "Metadata": {
                "RecommendationId": uuid_id("rightsizing", caller, pull.as_of, self.generator.seed),
                "GenerationTimestamp": f"{pull.as_of.isoformat()}T06:00:00Z",
                "LookbackPeriodInDays": "THIRTY_DAYS",
            },
            "Summary": {
                "TotalRecommendationCount": str(len(items)),
                "EstimatedTotalMonthlySavingsAmount": _money(total_savings),
                "SavingsCurrencyCode": CURRENCY,
                "SavingsPercentage": _money(100 * total_savings / total_cost)
                if total_cost
                else "0",
            },
            "RightsizingRecommendations": page,
            "Configuration": {
                "RecommendationTarget": target,
                "BenefitsConsidered": bool(configuration.get("BenefitsConsidered", True)),
            },
        }
        if token:
            response["NextPageToken"] = token
        return response

    def _rightsizing_items(
        self, caller: str, pull: Pull, *, cross_family: bool
    ) -> list[dict[str, Any]]:
        week = _week(pull.as_of)
        day = pull.as_of - dt.timedelta(days=1)
        items: list[dict[str, Any]] = []
        for member in organisation_members(caller):
            for row in self._rows(member, day, pull):
                if row.service != EC2_SERVICE or "BoxUsage:" not in row.usage_type:
                    continue
                name, region_code, region = _region(row.usage_type)
                kind = INSTANCE_TYPES.get(name)
                if kind is None:
                    continue
                running = min(
                    _INSTANCES_PER_LINE, max(1, round(float(row.unblended) / (kind.hourly * 24)))
                )
                for index in range(running):
                    item = self._instance(
                        member, name, kind, region_code, region, index, week, cross_family
                    )
                    if item is not None:
                        items.append(item)
        items.sort(key=lambda item: (-_item_savings(item), item["CurrentInstance"]["ResourceId"]))
        return items

    def _instance(
        self,
        account: str,
        name: str,
        kind: InstanceType,
        region_code: str,
        region: str,
        index: int,
        week: int,
        cross_family: bool,
    ) -> dict[str, Any] | None:
        seed = self.generator.seed
        resource = f"i-{hex_id(17, seed, account, region_code, name, index)}"
        if unit(seed, resource, "idle") >= _IDLE_SHARE:
            return None
        if unit(seed, resource, "recovered", week) < _RECOVERED_WEEKLY:
            return None
        cpu = 2 + 38 * unit(seed, resource, "cpu", week // 2)
        # Part of the fleet runs fewer hours some weeks, which moves its savings.
        hours_share = 0.75 if unit(seed, resource, "hours", week) < 0.2 else 1.0
        monthly = kind.hourly * HOURS_PER_MONTH * hours_share
        smaller = SMALLER_IN_FAMILY.get(name) or (
            SMALLER_ACROSS_FAMILIES.get(name) if cross_family else None
        )
        terminate = cpu < 6 or smaller is None
        current = {
            "ResourceId": resource,
            "InstanceName": f"{account[-4:]}-{name.split('.')[0]}-{index:03d}",
            "Tags": [{"Key": "team", "Values": [_team(resource)]}],
            "ResourceDetails": {"EC2ResourceDetails": _details(name, kind, region, resource)},
            "ResourceUtilization": {
                "EC2ResourceUtilization": {
                    "MaxCpuUtilizationPercentage": f"{cpu:.1f}",
                    "MaxMemoryUtilizationPercentage": f"{cpu * 1.3:.1f}",
                    "MaxStorageUtilizationPercentage": f"{10 + cpu / 2:.1f}",
                }
            },
            "ReservationCoveredHoursInLookbackPeriod": "0",
            "SavingsPlansCoveredHoursInLookbackPeriod": "0",
            "OnDemandHoursInLookbackPeriod": f"{720 * hours_share:.0f}",
            "TotalRunningHoursInLookbackPeriod": f"{720 * hours_share:.0f}",
            "MonthlyCost": _money(monthly),
            "CurrencyCode": CURRENCY,
        }
        item: dict[str, Any] = {"AccountId": account, "CurrentInstance": current}
        if terminate:
            item["RightsizingType"] = "TERMINATE"
            item["TerminateRecommendationDetail"] = {
                "EstimatedMonthlySavings": _money(monthly),
                "CurrencyCode": CURRENCY,
            }
            item["FindingReasonCodes"] = ["CPU_OVER_PROVISIONED", "MEMORY_OVER_PROVISIONED"]
            return item
        target = INSTANCE_TYPES[str(smaller)]
        target_monthly = target.hourly * HOURS_PER_MONTH * hours_share
        item["RightsizingType"] = "MODIFY"
        item["ModifyRecommendationDetail"] = {
            "TargetInstances": [
                {
                    "EstimatedMonthlyCost": _money(target_monthly),
                    "EstimatedMonthlySavings": _money(monthly - target_monthly),
                    "CurrencyCode": CURRENCY,
                    "DefaultTargetInstance": True,
                    "ResourceDetails": {
                        "EC2ResourceDetails": _details(smaller, target, region, resource)
                    },
                    "ExpectedResourceUtilization": {
                        "EC2ResourceUtilization": {
                            "MaxCpuUtilizationPercentage": f"{min(cpu * 2, 90):.1f}",
                            "MaxMemoryUtilizationPercentage": f"{min(cpu * 2.6, 90):.1f}",
                            "MaxStorageUtilizationPercentage": f"{10 + cpu / 2:.1f}",
                        }
                    },
                    "PlatformDifferences": [],
                }
            ]
        }
        item["FindingReasonCodes"] = ["CPU_OVER_PROVISIONED"]
        return item

    # --- Savings Plans ----------------------------------------------------------------

    def savings_plans(self, body: dict[str, Any], *, caller: str, pull: Pull) -> dict[str, Any]:
        plan_type = body.get("SavingsPlansType")
        term = body.get("TermInYears")
        payment = body.get("PaymentOption")
        lookback = body.get("LookbackPeriodInDays")
        scope = body.get("AccountScope") or "PAYER"
        if (
            plan_type not in COVERED_USAGE
            or term not in TERMS
            or payment not in PAYMENT_OPTIONS
            or lookback not in LOOKBACK_DAYS
            or scope not in {"PAYER", "LINKED"}
        ):
            raise SandboxApiError(
                "ValidationException",
                "SavingsPlansType, TermInYears, PaymentOption and LookbackPeriodInDays are "
                "required and must be valid values",
            )
        years = TERMS[term]
        upfront = PAYMENT_OPTIONS[payment]
        discount = DISCOUNTS[(plan_type, years)] + UPFRONT_BONUS * upfront
        days = LOOKBACK_DAYS[lookback]
        groups = self._cached(
            (SAVINGS_PLANS_OPERATION, caller, pull, plan_type, scope, days),
            lambda: self._covered_hourly_spend(caller, plan_type, scope, pull, days),
        )
        details = [
            _plan_detail(hourly, discount=discount, days=days, years=years, upfront=upfront)
            | _plan_identity(key, plan_type, scope, self.generator.seed, pull)
            for key, hourly in groups
            if _COVERED_SHARE * min(hourly) >= 0.01
        ]
        details.sort(key=lambda d: (-float(d["EstimatedMonthlySavingsAmount"]), _detail_key(d)))
        page, token = _page(details, body, pull, SAVINGS_PLANS_OPERATION, caller)
        recommendation: dict[str, Any] = {
            "AccountScope": scope,
            "SavingsPlansType": plan_type,
            "TermInYears": term,
            "PaymentOption": payment,
            "LookbackPeriodInDays": lookback,
            "SavingsPlansPurchaseRecommendationDetails": page,
        }
        if details:
            recommendation["SavingsPlansPurchaseRecommendationSummary"] = _plan_summary(
                details, days
            )
        response: dict[str, Any] = {
            "Metadata": {
                "RecommendationId": uuid_id(
                    "sp", _fingerprint(body, SAVINGS_PLANS_OPERATION, caller), pull.as_of
                ),
                "GenerationTimestamp": f"{pull.as_of.isoformat()}T06:00:00Z",
            },
            "SavingsPlansPurchaseRecommendation": recommendation,
        }
        if token:
            response["NextPageToken"] = token
        return response

    def _covered_hourly_spend(
        self, caller: str, plan_type: str, scope: str, pull: Pull, days: int
    ) -> list[tuple[tuple[str, ...], list[float]]]:
        """Daily covered spend / 24 over the lookback, per detail the response will hold."""
        covered = COVERED_USAGE[plan_type]
        per_instance_family = plan_type == "EC2_INSTANCE_SP"
        members = organisation_members(caller)
        daily: list[dict[tuple[str, ...], float]] = []
        for offset in range(days, 0, -1):
            day = pull.as_of - dt.timedelta(days=offset)
            hourly: dict[tuple[str, ...], float] = {}
            for member in members:
                for row in self._rows(member, day, pull):
                    if not any(
                        row.service == service and fragment in row.usage_type
                        for service, fragment in covered
                    ):
                        continue
                    key: tuple[str, ...] = (member,) if scope == "LINKED" else ()
                    if per_instance_family:
                        name, _, region = _region(row.usage_type)
                        key = (*key, region, name.split(".")[0])
                    hourly[key] = hourly.get(key, 0.0) + float(row.unblended) / 24
            daily.append(hourly)
        keys = sorted({key for hourly in daily for key in hourly})
        return [(key, [hourly.get(key, 0.0) for hourly in daily]) for key in keys]

    def _rows(self, account: str, day: dt.date, pull: Pull) -> Iterable[CostRow]:
        return self.generator.day_costs(account, day, pull).rows


def _team(resource: str) -> str:
    return ("web", "data", "platform", "ml", "batch")[int(unit(resource, "team") * 5)]


def _details(name: str, kind: InstanceType, region: str, resource: str) -> dict[str, str]:
    return {
        "HourlyOnDemandRate": f"{kind.hourly}",
        "InstanceType": name,
        "Platform": "Linux/UNIX",
        "Region": region,
        "Sku": hex_id(16, name, region).upper(),
        "Memory": kind.memory,
        "NetworkPerformance": kind.network,
        "Storage": "EBS only",
        "Vcpu": kind.vcpu,
    }


def _item_savings(item: dict[str, Any]) -> float:
    if item["RightsizingType"] == "TERMINATE":
        return float(item["TerminateRecommendationDetail"]["EstimatedMonthlySavings"])
    targets = item["ModifyRecommendationDetail"]["TargetInstances"]
    return float(targets[0]["EstimatedMonthlySavings"])


def _plan_detail(
    hourly: list[float],
    *,
    discount: float,
    days: int,
    years: int,
    upfront: float,
) -> dict[str, Any]:
    covered = _COVERED_SHARE * min(hourly)
    commitment = covered * (1 - discount)
    average = sum(hourly) / len(hourly)
    hours = 24 * days
    sp_cost = commitment * hours
    on_demand_cost = average * hours
    savings = covered * discount * hours
    return {
        "UpfrontCost": _money(commitment * upfront * 8760 * years),
        "EstimatedROI": _money(100 * savings / sp_cost),
        "CurrencyCode": CURRENCY,
        "EstimatedSPCost": _money(sp_cost),
        "EstimatedOnDemandCost": _money(covered * hours),
        "EstimatedOnDemandCostWithCurrentCommitment": _money(on_demand_cost),
        "EstimatedSavingsAmount": _money(savings),
        "EstimatedSavingsPercentage": _money(100 * savings / on_demand_cost),
        "HourlyCommitmentToPurchase": _money(commitment),
        "EstimatedAverageUtilization": "100.0",
        "EstimatedMonthlySavingsAmount": _money(covered * discount * HOURS_PER_MONTH),
        "CurrentMinimumHourlyOnDemandSpend": _money(min(hourly)),
        "CurrentMaximumHourlyOnDemandSpend": _money(max(hourly)),
        "CurrentAverageHourlyOnDemandSpend": _money(average),
    }


def _plan_identity(
    key: tuple[str, ...], plan_type: str, scope: str, seed: int, pull: Pull
) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "RecommendationDetailId": uuid_id("sp-detail", seed, plan_type, scope, key, pull.as_of)
    }
    rest = key
    if scope == "LINKED":
        identity["AccountId"], rest = key[0], key[1:]
    if rest:
        region, family = rest
        identity["SavingsPlansDetails"] = {
            "Region": region,
            "InstanceFamily": family,
            "OfferingId": uuid_id("offering", plan_type, region, family),
        }
    return identity


def _detail_key(detail: dict[str, Any]) -> str:
    plan = detail.get("SavingsPlansDetails") or {}
    return (
        f"{detail.get('AccountId', '')}/{plan.get('Region', '')}/{plan.get('InstanceFamily', '')}"
    )


def _plan_summary(details: list[dict[str, Any]], days: int) -> dict[str, str]:
    def total(name: str) -> float:
        return sum(float(detail[name]) for detail in details)

    savings = total("EstimatedSavingsAmount")
    sp_cost = total("EstimatedSPCost")
    on_demand = total("EstimatedOnDemandCostWithCurrentCommitment")
    hourly = total("HourlyCommitmentToPurchase")
    return {
        "EstimatedROI": _money(100 * savings / sp_cost) if sp_cost else "0",
        "CurrencyCode": CURRENCY,
        "EstimatedTotalCost": _money(sp_cost),
        "CurrentOnDemandSpend": _money(on_demand),
        "EstimatedSavingsAmount": _money(savings),
        "TotalRecommendationCount": str(len(details)),
        "DailyCommitmentToPurchase": _money(hourly * 24),
        "HourlyCommitmentToPurchase": _money(hourly),
        "EstimatedSavingsPercentage": _money(100 * savings / on_demand) if on_demand else "0",
        "EstimatedMonthlySavingsAmount": _money(total("EstimatedMonthlySavingsAmount")),
        "EstimatedOnDemandCostWithCurrentCommitment": _money(on_demand),
    }


# --- paging -----------------------------------------------------------------------------


def _fingerprint(body: dict[str, Any], operation: str, caller: str) -> str:
    unsigned = {key: value for key, value in body.items() if key != "NextPageToken"}
    text = json.dumps([operation, caller, unsigned], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _page(
    items: list[dict[str, Any]],
    body: dict[str, Any],
    pull: Pull,
    operation: str,
    caller: str,
) -> tuple[list[dict[str, Any]], str | None]:
    size = body.get("PageSize")
    if size is None or size == 0:
        size = DEFAULT_PAGE_SIZE
    if not isinstance(size, int) or not 0 < size <= MAX_PAGE_SIZE:
        raise SandboxApiError("ValidationException", f"PageSize must be 0..{MAX_PAGE_SIZE}")
    fingerprint = _fingerprint(body, operation, caller)
    offset = 0
    token = body.get("NextPageToken")
    if token:
        try:
            payload = json.loads(base64.urlsafe_b64decode(str(token).encode()))
            offset = int(payload["o"])
            valid = (
                payload["f"] == fingerprint
                and payload["a"] == pull.as_of.isoformat()
                and int(payload["g"]) == pull.generation
                and 0 < offset < len(items)
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise SandboxApiError("InvalidNextTokenException", "Invalid NextPageToken")
    end = offset + size
    next_token = None
    if end < len(items):
        payload = {"o": end, "f": fingerprint, "a": pull.as_of.isoformat(), "g": pull.generation}
        next_token = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    return items[offset:end], next_token
