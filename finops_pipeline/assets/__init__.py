"""Cost assets."""

from finops_pipeline.assets.cost_data import cost_data

__all__ = ["cost_data"]
