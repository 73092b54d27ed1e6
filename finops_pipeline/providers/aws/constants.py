"""AWS Cost Explorer constants: metrics, grouping, region, price, retry limits."""

from __future__ import annotations

# Cost Explorer cost metric -> our column. NetUnblended includes discounts and credits;
# BlendedCost is omitted because it only differs for consolidated-billing averaging. Amounts
# arrive as decimal strings; they stay Decimal.
CE_COST_METRIC_COLUMNS: dict[str, str] = {
    "UnblendedCost": "unblended_cost",
    "AmortizedCost": "amortized_cost",
    "NetUnblendedCost": "net_unblended_cost",
}
CE_USAGE_METRIC = "UsageQuantity"

# Every metric each request asks for: the costs above, then usage.
CE_METRICS: tuple[str, ...] = (*CE_COST_METRIC_COLUMNS, CE_USAGE_METRIC)

# Cost Explorer allows at most two GroupBy entries (aws/aws-sdk issue 369).
CE_GROUP_BY: tuple[tuple[str, str], ...] = (("DIMENSION", "SERVICE"), ("DIMENSION", "USAGE_TYPE"))

# Cost Explorer is a global service served from us-east-1.
CE_REGION = "us-east-1"

# Each GetCostAndUsage request, and each page of one, is billed at $0.01.
CE_PRICE_PER_REQUEST_USD = "0.01"

# How many times a paged fetch starts over after a pagination-token failure.
CE_MAX_PAGINATION_RESTARTS = 3

# Attempts for botocore's standard retry mode, which (unlike "legacy") retries
# Cost Explorer's LimitExceededException.
CE_MAX_ATTEMPTS = 8
