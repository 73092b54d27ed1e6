"""The ``account`` × ``date`` partitions of cost assets."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from finops_pipeline.constants import (
    ACCOUNT_DIMENSION,
    ACCOUNTS_PARTITIONS_NAME,
    DATE_DIMENSION,
    TENANTS_PARTITIONS_NAME,
)
from finops_pipeline.sync.windows import daily_history_start

cloud_account_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNTS_PARTITIONS_NAME)

#: The first day Cost Explorer served daily data when this code location loaded. Older days
#: can only fail (BillExpirationException), so they are not offered. Dagster needs one start
#: per load, so it moves on a month's 1st only when the code location next loads; older
#: materialisations then leave the partition view, while their rows stay in cost_data.
PARTITIONS_START_DATE = daily_history_start(dt.datetime.now(dt.UTC).date())

# UTC days; today is partial in Cost Explorer, so the newest partition is yesterday.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START_DATE.isoformat(), timezone="UTC"
)

account_daily_partitions = dg.MultiPartitionsDefinition(
    {DATE_DIMENSION: daily_partitions, ACCOUNT_DIMENSION: cloud_account_partitions}
)

#: One partition per tenant (``tenants.tenant_id``), kept in step by the tenant sensor.
tenant_partitions = dg.DynamicPartitionsDefinition(name=TENANTS_PARTITIONS_NAME)
