"""Data-quality checks on cost_data: reconciliation, freshness, completeness and sanity.

Pure logic: the facts come from ``finops_pipeline.db.quality``, the findings go to whatever
reports them (Dagster asset checks, the CLI).
"""

from finops_pipeline.quality.checks import (
    COMPLETENESS,
    DEFAULT_MAX_LAG_DAYS,
    FRESHNESS,
    RECONCILIATION,
    RECONCILIATION_TOLERANCE,
    SANITY,
    AccountSanityFacts,
    CurrencyUse,
    DayCoverage,
    LatestFinalDay,
    MonthTotal,
    check_completeness,
    check_freshness,
    check_reconciliation,
    check_sanity,
)
from finops_pipeline.quality.findings import AccountFinding, CheckResult, day_ranges

__all__ = [
    "COMPLETENESS",
    "DEFAULT_MAX_LAG_DAYS",
    "FRESHNESS",
    "RECONCILIATION",
    "RECONCILIATION_TOLERANCE",
    "SANITY",
    "AccountFinding",
    "AccountSanityFacts",
    "CheckResult",
    "CurrencyUse",
    "DayCoverage",
    "LatestFinalDay",
    "MonthTotal",
    "check_completeness",
    "check_freshness",
    "check_reconciliation",
    "check_sanity",
    "day_ranges",
]
