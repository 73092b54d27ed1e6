"""Constants shared across the pipeline."""

from __future__ import annotations

# Cost Explorer cost metrics we store. NetUnblended/NetAmortized include discounts and credits;
# BlendedCost is omitted because it only differs for consolidated-billing averaging.
CE_METRICS: tuple[str, ...] = (
    "UnblendedCost",
    "AmortizedCost",
    "NetUnblendedCost",
    "UsageQuantity",
)

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

ACCOUNTS_PARTITIONS_NAME = "cloud_accounts"
DATE_DIMENSION = "date"
ACCOUNT_DIMENSION = "account"

PROVIDER_AWS = "aws"
PROVIDER_AZURE = "azure"
PROVIDER_GCP = "gcp"

COST_DATA_TABLE = "cost_data"
ACCOUNTS_TABLE = "cloud_accounts"

# Column order of cost_data rows as the normaliser emits them and the loader COPYs them.
COST_KEY_COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "cloud_account_id",
    "date",
    "provider",
    "service",
    "usage_type",
)
COST_VALUE_COLUMNS: tuple[str, ...] = (
    "unblended_cost",
    "amortized_cost",
    "net_unblended_cost",
    "usage_quantity",
    "currency",
    "usage_unit",
    "is_estimated",
)
COST_COLUMNS: tuple[str, ...] = COST_KEY_COLUMNS + COST_VALUE_COLUMNS
