"""Cost Explorer recommendation responses, shaped by botocore's service model.

Every field name and nesting here comes from the ``ce`` model's output shapes
(``GetRightsizingRecommendationResponse``, ``GetSavingsPlansPurchaseRecommendationResponse``);
``botocore.stub.Stubber`` validates each response against them before the client returns it,
so a misspelt or misplaced field fails the test that uses it.
"""

from __future__ import annotations

from typing import Any

REGION = "US East (N. Virginia)"


def ec2_details(instance_type: str, hourly: str, *, vcpu: str = "2", memory: str = "8 GiB") -> dict:
    return {
        "EC2ResourceDetails": {
            "HourlyOnDemandRate": hourly,
            "InstanceType": instance_type,
            "Platform": "Linux/UNIX",
            "Region": REGION,
            "Sku": "JRTCKXETXF9YHS6Z",
            "Memory": memory,
            "NetworkPerformance": "Up to 10 Gigabit",
            "Storage": "EBS only",
            "Vcpu": vcpu,
        }
    }


def utilisation(cpu: str) -> dict:
    return {
        "EC2ResourceUtilization": {
            "MaxCpuUtilizationPercentage": cpu,
            "MaxMemoryUtilizationPercentage": "31.5",
            "MaxStorageUtilizationPercentage": "12.0",
            "EBSResourceUtilization": {
                "EbsReadOpsPerSecond": "0.2",
                "EbsWriteOpsPerSecond": "3.1",
                "EbsReadBytesPerSecond": "2048.0",
                "EbsWriteBytesPerSecond": "40960.0",
            },
            "NetworkResourceUtilization": {
                "NetworkInBytesPerSecond": "1200.0",
                "NetworkOutBytesPerSecond": "900.0",
                "NetworkPacketsInPerSecond": "14.0",
                "NetworkPacketsOutPerSecond": "11.0",
            },
        }
    }


def current_instance(resource: str, instance_type: str, monthly: str, *, name: str = "") -> dict:
    current: dict[str, Any] = {
        "ResourceId": resource,
        "Tags": [{"Key": "team", "Values": ["web"], "MatchOptions": ["EQUALS"]}],
        "ResourceDetails": ec2_details(instance_type, "0.192", vcpu="4", memory="16 GiB"),
        "ResourceUtilization": utilisation("9.5"),
        "ReservationCoveredHoursInLookbackPeriod": "0",
        "SavingsPlansCoveredHoursInLookbackPeriod": "0",
        "OnDemandHoursInLookbackPeriod": "336",
        "TotalRunningHoursInLookbackPeriod": "336",
        "MonthlyCost": monthly,
        "CurrencyCode": "USD",
    }
    if name:
        current["InstanceName"] = name
    return current


def target(instance_type: str, cost: str, savings: str, *, default: bool) -> dict:
    return {
        "EstimatedMonthlyCost": cost,
        "EstimatedMonthlySavings": savings,
        "CurrencyCode": "USD",
        "DefaultTargetInstance": default,
        "ResourceDetails": ec2_details(instance_type, "0.096"),
        "ExpectedResourceUtilization": utilisation("19.0"),
        "PlatformDifferences": [],
    }


def modify(
    resource: str,
    *,
    account: str = "123456789012",
    current: str = "m5.xlarge",
    monthly: str = "140.16",
    targets: list[dict] | None = None,
    name: str = "",
) -> dict:
    return {
        "AccountId": account,
        "CurrentInstance": current_instance(resource, current, monthly, name=name),
        "RightsizingType": "MODIFY",
        "ModifyRecommendationDetail": {
            "TargetInstances": targets
            if targets is not None
            else [target("m5.large", "70.08", "70.08", default=True)]
        },
        "FindingReasonCodes": ["CPU_OVER_PROVISIONED"],
    }


def terminate(resource: str, savings: str, *, account: str = "123456789012") -> dict:
    return {
        "AccountId": account,
        "CurrentInstance": current_instance(resource, "m5.large", savings),
        "RightsizingType": "TERMINATE",
        "TerminateRecommendationDetail": {
            "EstimatedMonthlySavings": savings,
            "CurrencyCode": "USD",
        },
        "FindingReasonCodes": ["CPU_OVER_PROVISIONED", "MEMORY_OVER_PROVISIONED"],
    }


def rightsizing_page(items: list[dict], *, token: str | None = None) -> dict:
    page: dict[str, Any] = {
        "Metadata": {
            "RecommendationId": "7bb29ac1-1a4b-4f1d-9d9d-4b5c5a3e6f10",
            "GenerationTimestamp": "2026-06-01T06:12:00Z",
            "LookbackPeriodInDays": "THIRTY_DAYS",
            "AdditionalMetadata": "",
        },
        "Summary": {
            "TotalRecommendationCount": str(len(items)),
            "EstimatedTotalMonthlySavingsAmount": "0",
            "SavingsCurrencyCode": "USD",
            "SavingsPercentage": "0",
        },
        "RightsizingRecommendations": items,
        "Configuration": {
            "RecommendationTarget": "SAME_INSTANCE_FAMILY",
            "BenefitsConsidered": True,
        },
    }
    if token:
        page["NextPageToken"] = token
    return page


def plan_detail(
    savings: str,
    *,
    commitment: str = "1.25",
    account: str | None = None,
    region: str | None = None,
    family: str | None = None,
) -> dict:
    detail: dict[str, Any] = {
        "UpfrontCost": "0.0",
        "EstimatedROI": "21.7",
        "CurrencyCode": "USD",
        "EstimatedSPCost": "900.0",
        "EstimatedOnDemandCost": "1095.0",
        "EstimatedOnDemandCostWithCurrentCommitment": "1400.2",
        "EstimatedSavingsAmount": "195.0",
        "EstimatedSavingsPercentage": "17.8",
        "HourlyCommitmentToPurchase": commitment,
        "EstimatedAverageUtilization": "99.2",
        "EstimatedMonthlySavingsAmount": savings,
        "CurrentMinimumHourlyOnDemandSpend": "1.52",
        "CurrentMaximumHourlyOnDemandSpend": "2.40",
        "CurrentAverageHourlyOnDemandSpend": "1.94",
        "RecommendationDetailId": "0f3c9a52-3d3c-4e5b-9d61-1e2a0b7c5d11",
    }
    if account:
        detail["AccountId"] = account
    if region or family:
        detail["SavingsPlansDetails"] = {
            "Region": region,
            "InstanceFamily": family,
            "OfferingId": "5b5c0e0e-96f8-4a8f-9b3c-4f7f3c2a1d00",
        }
    return detail


def savings_plans_page(
    details: list[dict],
    *,
    plan_type: str = "COMPUTE_SP",
    scope: str = "PAYER",
    term: str = "ONE_YEAR",
    payment: str = "NO_UPFRONT",
    token: str | None = None,
) -> dict:
    recommendation: dict[str, Any] = {
        "AccountScope": scope,
        "SavingsPlansType": plan_type,
        "TermInYears": term,
        "PaymentOption": payment,
        "LookbackPeriodInDays": "THIRTY_DAYS",
        "SavingsPlansPurchaseRecommendationDetails": details,
    }
    if details:
        recommendation["SavingsPlansPurchaseRecommendationSummary"] = {
            "EstimatedROI": "21.7",
            "CurrencyCode": "USD",
            "EstimatedTotalCost": "900.0",
            "CurrentOnDemandSpend": "1400.2",
            "EstimatedSavingsAmount": "195.0",
            "TotalRecommendationCount": str(len(details)),
            "DailyCommitmentToPurchase": "30.0",
            "HourlyCommitmentToPurchase": "1.25",
            "EstimatedSavingsPercentage": "17.8",
            "EstimatedMonthlySavingsAmount": "190.1",
            "EstimatedOnDemandCostWithCurrentCommitment": "1400.2",
        }
    page: dict[str, Any] = {
        "Metadata": {
            "RecommendationId": "c1d9a7e0-4b7f-4e0c-8f4b-0e5a6c7d8e9f",
            "GenerationTimestamp": "2026-06-01T06:12:00Z",
            "AdditionalMetadata": "",
        },
        "SavingsPlansPurchaseRecommendation": recommendation,
    }
    if token:
        page["NextPageToken"] = token
    return page
