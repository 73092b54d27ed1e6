"""Provider-neutral constants: partition and job names, provider names, cost_data columns.

Each provider's own constants live in its package (``providers/aws/constants.py``).
"""

from __future__ import annotations

ACCOUNTS_PARTITIONS_NAME = "cloud_accounts"
#: The job every requested run targets (defined in ``finops_pipeline.definitions``).
COST_DATA_JOB_NAME = "cost_data_job"
TENANTS_PARTITIONS_NAME = "tenants"
DATE_DIMENSION = "date"
ACCOUNT_DIMENSION = "account"

#: Days `finops demo` backfills unless told otherwise.
DEMO_DEFAULT_DAYS = 90

PROVIDER_AWS = "aws"
PROVIDER_AZURE = "azure"
PROVIDER_GCP = "gcp"


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
