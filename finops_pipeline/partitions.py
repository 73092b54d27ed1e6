"""The ``account`` × ``date`` partitions of cost assets."""

from __future__ import annotations

import dagster as dg

from finops_pipeline.settings import (
    ACCOUNT_DIMENSION,
    ACCOUNTS_PARTITIONS_NAME,
    DATE_DIMENSION,
    PARTITIONS_START_DATE,
)

cloud_account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNTS_PARTITIONS_NAME)

# UTC days; today is partial in Cost Explorer, so the newest partition is yesterday.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START_DATE.isoformat(), timezone="UTC"
)

account_daily_partitions = dg.MultiPartitionsDefinition(
    {DATE_DIMENSION: daily_partitions, ACCOUNT_DIMENSION: cloud_account_partitions}
)
