"""Running ``cost_data`` in-process for accounts and days, as one range run."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.assets import cost_data
from finops_pipeline.db.embedded import finops_home
from finops_pipeline.partition_keys import account_date_key
from finops_pipeline.settings import ACCOUNTS_PARTITIONS_NAME, PARTITIONS_START_DATE


@dataclass
class SyncResult:
    """What one in-process range run did; the CLI prints it."""

    success: bool
    run_id: str
    accounts: list[str]
    start: dt.date
    end: dt.date
    statistics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "run_id": self.run_id,
            "accounts": self.accounts,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "statistics": self.statistics,
            "error": self.error,
        }


def local_dagster_home(environ: Mapping[str, str] | None = None) -> Path:
    """``DAGSTER_HOME``, else ``FINOPS_HOME/dagster``, so CLI runs show in ``dagster dev``."""
    env = os.environ if environ is None else environ
    configured = env.get("DAGSTER_HOME", "").strip()
    home = Path(configured) if configured else finops_home(env) / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return home


def open_instance() -> dg.DagsterInstance:
    """The persistent local Dagster instance the CLI records its runs in."""
    os.environ["DAGSTER_HOME"] = str(local_dagster_home())
    return dg.DagsterInstance.get()


def validate_window(start: dt.date, end: dt.date, today: dt.date | None = None) -> None:
    """Refuse windows Dagster has no partitions for; the error says which days are valid."""
    today = today or dt.datetime.now(dt.UTC).date()
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    if start < PARTITIONS_START_DATE:
        raise ValueError(f"--start must be on or after {PARTITIONS_START_DATE}")
    if end >= today:
        raise ValueError(
            f"--end must be before today ({today}, UTC): today's costs are still partial"
        )


def sync_accounts(
    account_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    tags: Mapping[str, str] | None = None,
) -> SyncResult:
    """Materialise ``cost_data`` for every account × day in one in-process range run.

    ``end`` is inclusive. With several accounts the run covers the block between the first
    and last account key, which Dagster expands per dimension.
    """
    ordered = sorted(set(account_ids))
    instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, ordered)
    run_tags = {
        ASSET_PARTITION_RANGE_START_TAG: account_date_key(ordered[0], start),
        ASSET_PARTITION_RANGE_END_TAG: account_date_key(ordered[-1], end),
        **(tags or {}),
    }
    result = dg.materialize(
        [cost_data], instance=instance, resources=resources, tags=run_tags, raise_on_error=False
    )
    statistics: dict[str, Any] = {}
    materializations = result.asset_materializations_for_node("cost_data")
    failure_events = [event for event in result.all_events if event.is_step_failure]
    error = None
    if materializations:
        statistics = _plain_metadata(materializations[0].metadata)
    if failure_events:
        data = failure_events[0].step_failure_data
        error = data.user_failure_data.description if data.user_failure_data else None
        if error is None and data.error is not None:
            error = data.error.message.strip()
        if data.user_failure_data is not None:
            statistics = _plain_metadata(data.user_failure_data.metadata)
    return SyncResult(
        success=result.success,
        run_id=result.run_id,
        accounts=ordered,
        start=start,
        end=end,
        statistics=statistics,
        error=error,
    )


def _plain_metadata(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dg.TableMetadataValue):
            plain[key] = [dict(record.data) for record in value.records]
        else:
            plain[key.replace("dagster/", "")] = value.value
    return plain
