"""Every private Dagster name the pipeline uses, in one place, each with the reason.

Dagster's public API has no equivalent for these; pinning dagster keeps them stable, and a
Dagster upgrade needs checking only here.
"""

import os
from collections.abc import MutableMapping

# A partition backfill as the UI's "Launch backfill" creates it (launchPartitionBackfill's
# resolver builds the same object); the daemon benchmark submits one without a webserver.
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

# The tags that mark a run's partition or partition range. The sensors, the schedule and the
# CLI set the range tags on the runs they request (sync/run_tags.py, cli/runner.py), and the
# last-sync fold reads all three back to know which accounts and days a finished run covered.
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
)
from dagster._core.utils import make_new_backfill_id

# The type of a failed step's error as the in-process runner reads it from the event log; the
# CLI walks its cause chain to print one line instead of a stack trace.
from dagster._utils.error import SerializableErrorInfo

# Two switches Dagster reads from the environment (not dagster.yaml), each time it writes an
# event, so setting them in a running process takes effect:
# - DAGSTER_EVENT_BATCH_SIZE: a range run's per-partition materialisation events go to the
#   event log in one INSERT per batch instead of one transaction (and, with dagster-postgres'
#   NullPool, one new connection) each. Only materialisation and observation events of one
#   step's output are batched; if the process dies mid-batch the step has not finished, so the
#   run fails and is retried, and the loader's digests make the retry write nothing twice.
# - DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS: creating a range run logs one "planned"
#   event holding the partition subset instead of one per partition. Trade-off (Dagster's
#   note): partitions of a failed run then show as missing, not failed; account failures are
#   still recorded per account in account_sync_runs and shown by `finops accounts`.
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
PLANNED_EVENTS_AS_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
#: Events per batch: a 13-month range run of one account has ~400 partitions.
EVENT_BATCH_SIZE = 1000


def use_batched_run_bookkeeping(environ: MutableMapping[str, str] | None = None) -> None:
    """Turn both switches on unless the deployment set them (``0``/``false`` turn them off)."""
    env = os.environ if environ is None else environ
    env.setdefault(EVENT_BATCH_SIZE_ENV, str(EVENT_BATCH_SIZE))
    env.setdefault(PLANNED_EVENTS_AS_SUBSET_ENV, "true")


__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "BACKFILL_ID_TAG",
    "EVENT_BATCH_SIZE",
    "EVENT_BATCH_SIZE_ENV",
    "PARTITION_NAME_TAG",
    "PLANNED_EVENTS_AS_SUBSET_ENV",
    "BulkActionStatus",
    "PartitionBackfill",
    "SerializableErrorInfo",
    "make_new_backfill_id",
    "use_batched_run_bookkeeping",
]
