"""Running ``cost_data`` in-process for accounts and days, as one range run."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from finops_pipeline.assets import cost_data
from finops_pipeline.db.embedded import finops_home
from finops_pipeline.instance_config import write_instance_config
from finops_pipeline.partition_keys import account_date_key
from finops_pipeline.resources.postgres import PostgresResource
from finops_pipeline.sensors.last_sync import record_run_last_sync
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
    home = local_dagster_home()
    write_instance_config(home)
    os.environ["DAGSTER_HOME"] = str(home)
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


def account_blocks(requested: Sequence[str], partition_order: Sequence[str]) -> list[list[str]]:
    """Split accounts into runs whose accounts are adjacent in the instance's partition order.

    A multi-partition range spans every account between its two ends, in the order the dynamic
    partitions were added, so only an adjacent block can share one range run.
    """
    position = {account: index for index, account in enumerate(partition_order)}
    ordered = sorted(set(requested), key=lambda account: position[account])
    blocks: list[list[str]] = []
    for account in ordered:
        if blocks and position[account] == position[blocks[-1][-1]] + 1:
            blocks[-1].append(account)
        else:
            blocks.append([account])
    return blocks


def sync_accounts(
    account_ids: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> SyncResult:
    """Materialise ``cost_data`` for every account and day in as few in-process range runs as
    the partition order allows (one, for one account). ``end`` is inclusive.
    """
    known = set(instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME))
    missing = [account for account in dict.fromkeys(account_ids) if account not in known]
    if missing:
        instance.add_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME, missing)
    order = instance.get_dynamic_partitions(ACCOUNTS_PARTITIONS_NAME)
    summary = SyncResult(
        success=True, run_id="", accounts=sorted(set(account_ids)), start=start, end=end
    )
    run_ids = []
    postgres = _postgres_outside_runs(resources)
    try:
        for block in account_blocks(account_ids, order):
            run_tags = {
                ASSET_PARTITION_RANGE_START_TAG: account_date_key(block[0], start),
                ASSET_PARTITION_RANGE_END_TAG: account_date_key(block[-1], end),
                **(tags or {}),
            }
            result = dg.materialize(
                [cost_data],
                instance=instance,
                resources=resources,
                tags=run_tags,
                run_config=dict(run_config) if run_config else None,
                raise_on_error=False,
            )
            run_ids.append(result.run_id)
            statistics, error = _run_statistics(result)
            # The daemon's run-status sensors never see in-process runs, so record last sync here.
            run = instance.get_run_by_id(result.run_id)
            if run is not None:
                record_run_last_sync(instance, run, postgres, succeeded=result.success, error=error)
            _accumulate(summary.statistics, statistics)
            if not result.success:
                summary.success = False
                summary.error = "\n".join(filter(None, [summary.error, error]))
    finally:
        if postgres is not resources.get("postgres"):
            postgres.dispose()
    summary.run_id = ",".join(run_ids)
    return summary


def _postgres_outside_runs(resources: Mapping[str, object]) -> PostgresResource:
    """The run's Postgres resource, usable outside a run.

    A field bound to ``dg.EnvVar`` is only resolved inside runs; outside, a plain resource reads
    ``DATABASE_URL`` itself, which is the same database.
    """
    postgres = resources.get("postgres")
    if isinstance(postgres, PostgresResource) and not isinstance(postgres.database_url, dg.EnvVar):
        return postgres
    return PostgresResource()


def _run_statistics(result: dg.ExecuteInProcessResult) -> tuple[dict[str, Any], str | None]:
    statistics: dict[str, Any] = {}
    error = None
    materializations = result.asset_materializations_for_node("cost_data")
    if materializations:
        statistics = _plain_metadata(materializations[0].metadata)
    failure_events = [event for event in result.all_events if event.is_step_failure]
    if failure_events and failure_events[0].step_failure_data is not None:
        data = failure_events[0].step_failure_data
        if data.user_failure_data is not None:
            error = data.user_failure_data.description
            statistics = _plain_metadata(data.user_failure_data.metadata)
        elif data.error is not None:
            error = data.error.message.strip()
    elif not result.success:
        error = "the run failed before the cost_data step; see the Dagster event log"
    return statistics, error


def _accumulate(total: dict[str, Any], addition: Mapping[str, Any]) -> None:
    for key, value in addition.items():
        current = total.get(key)
        if key.startswith("total_unblended_cost_") and current is not None:
            total[key] = str(Decimal(current) + Decimal(value))
        elif (isinstance(value, int | float) and isinstance(current, int | float)) or (
            isinstance(value, list) and isinstance(current, list)
        ):
            total[key] = current + value
        else:
            total[key] = value


def _plain_metadata(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, dg.TableMetadataValue):
            plain[key] = [dict(record.data) for record in value.records]
        else:
            plain[key.replace("dagster/", "")] = value.value
    return plain
