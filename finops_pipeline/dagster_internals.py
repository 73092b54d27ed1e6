"""Every private Dagster name the pipeline uses, in one place, each with the reason.

Dagster's public API has no equivalent for these; pinning dagster keeps them stable, and a
Dagster upgrade needs checking only here.
"""

# The tags that mark a run's partition or partition range. The sensors, the schedule and the
# CLI set the range tags on the runs they request (sync/run_tags.py, cli/runner.py), and the
# last-sync fold reads all three back to know which accounts and days a finished run covered.
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

# The type of a failed step's error as the in-process runner reads it from the event log; the
# CLI walks its cause chain to print one line instead of a stack trace.
from dagster._utils.error import SerializableErrorInfo

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "PARTITION_NAME_TAG",
    "SerializableErrorInfo",
]
