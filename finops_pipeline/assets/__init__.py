"""Cost assets and their checks."""

from finops_pipeline.assets.cost_data import cost_data
from finops_pipeline.assets.cost_data_checks import COST_DATA_CHECKS

__all__ = ["COST_DATA_CHECKS", "cost_data"]
