"""The tenant sensor: the ``tenants`` partitions of ``cost_summary`` follow the tenants table."""

from __future__ import annotations

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.constants import TENANTS_PARTITIONS_NAME
from finops_pipeline.db.tenants import tenant_ids
from finops_pipeline.partitions import tenant_partitions
from finops_pipeline.resources.postgres import PostgresResource

_CONFIG = FinopsConfig.from_env()


@dg.sensor(
    name="tenants_sensor",
    minimum_interval_seconds=_CONFIG.sensor_interval_seconds,
    default_status=_CONFIG.sensor_default_status(),
    description="Adds a cost_summary partition for each tenant and removes deleted tenants'.",
)
def tenants_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult:
    with postgres.connection() as connection:
        tenants = set(tenant_ids(connection))
    existing = set(context.instance.get_dynamic_partitions(TENANTS_PARTITIONS_NAME))
    added, deleted = sorted(tenants - existing), sorted(existing - tenants)
    if not added and not deleted:
        return dg.SensorResult(skip_reason=f"{len(existing)} tenant partitions, all current")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(tenant_partitions.build_add_request(added))
    if deleted:
        requests.append(tenant_partitions.build_delete_request(deleted))
    context.log.info("Tenants: %d added, %d removed", len(added), len(deleted))
    return dg.SensorResult(dynamic_partitions_requests=requests)
