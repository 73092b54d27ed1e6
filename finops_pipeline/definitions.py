"""The Dagster code location: ``workspace.yaml`` loads ``defs`` from here.

Loading this module touches no network and no database.
"""

from __future__ import annotations

import dagster as dg

from finops_pipeline.assets import cost_data
from finops_pipeline.assets.anomalies import cost_anomalies, provider_cost_anomalies
from finops_pipeline.assets.recommendations import cost_recommendations
from finops_pipeline.assets.summary import cost_summary
from finops_pipeline.constants import COST_DATA_JOB_NAME
from finops_pipeline.insights_schedules import (
    PROVIDER_ANOMALIES_JOB_NAME,
    RECOMMENDATIONS_JOB_NAME,
    daily_provider_anomalies,
    weekly_recommendations_refresh,
)
from finops_pipeline.resources import default_resources
from finops_pipeline.schedules import daily_cost_sync
from finops_pipeline.sensors import (
    cloud_accounts_sensor,
    last_sync_failure_sensor,
    last_sync_success_sensor,
)
from finops_pipeline.sensors.insights import insights_automation_sensor
from finops_pipeline.sensors.tenants import tenants_sensor

cost_data_job = dg.define_asset_job(
    COST_DATA_JOB_NAME,
    selection=[cost_data],
    description="Fetch daily costs for the selected accounts and days into cost_data.",
)

cost_recommendations_job = dg.define_asset_job(
    RECOMMENDATIONS_JOB_NAME,
    selection=[cost_recommendations],
    description="Refresh the selected accounts' savings recommendations.",
)

provider_cost_anomalies_job = dg.define_asset_job(
    PROVIDER_ANOMALIES_JOB_NAME,
    selection=[provider_cost_anomalies],
    description="Read the selected accounts' anomalies from their cloud's own detection.",
)

defs = dg.Definitions(
    assets=[
        cost_data,
        cost_recommendations,
        cost_anomalies,
        provider_cost_anomalies,
        cost_summary,
    ],
    jobs=[cost_data_job, cost_recommendations_job, provider_cost_anomalies_job],
    schedules=[daily_cost_sync, weekly_recommendations_refresh, daily_provider_anomalies],
    sensors=[
        cloud_accounts_sensor,
        last_sync_success_sensor,
        last_sync_failure_sensor,
        tenants_sensor,
        insights_automation_sensor,
    ],
    resources=default_resources(),
    # A cost_data run is one step; the default multiprocess executor would start a second
    # Python process per run (~10-20 s each on 2 cores) for nothing. Parallelism comes from
    # running many runs at once, within the limits in deploy/dagster.yaml.
    executor=dg.in_process_executor,
)
