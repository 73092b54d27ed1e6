"""The Dagster code location: ``workspace.yaml`` loads ``defs`` from here.

Loading this module touches no network and no database.
"""

from __future__ import annotations

import dagster as dg

from finops_pipeline.assets import cost_data
from finops_pipeline.resources import default_resources

cost_data_job = dg.define_asset_job(
    "cost_data_job",
    selection=[cost_data],
    description="Fetch daily costs for the selected accounts and days into cost_data.",
)

defs = dg.Definitions(
    assets=[cost_data],
    jobs=[cost_data_job],
    resources=default_resources(),
)
