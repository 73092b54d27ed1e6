"""The sensor that evaluates the insight assets' automation conditions."""

from __future__ import annotations

import dagster as dg

from finops_pipeline.assets.anomalies import cost_anomalies
from finops_pipeline.assets.summary import cost_summary
from finops_pipeline.config import FinopsConfig

_CONFIG = FinopsConfig.from_env()

#: Our own, rather than Dagster's default one, so it runs by default like the other sensors
#: (``FINOPS_SENSOR_STATUS``) and a deployment gets fresh anomalies without a click in the UI.
insights_automation_sensor = dg.AutomationConditionSensorDefinition(
    "insights_automation_sensor",
    target=dg.AssetSelection.assets(cost_anomalies, cost_summary),
    default_status=_CONFIG.sensor_default_status(),
    minimum_interval_seconds=_CONFIG.sensor_interval_seconds,
    description="Re-runs cost_anomalies after cost_data changes, then each tenant's "
    "cost_summary; charts new tenants.",
)
