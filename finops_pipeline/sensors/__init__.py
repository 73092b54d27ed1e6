"""Sensors: account partitions and initial backfills, organisation members, last sync."""

from finops_pipeline.sensors.accounts import cloud_accounts_sensor
from finops_pipeline.sensors.last_sync import last_sync_failure_sensor, last_sync_success_sensor
from finops_pipeline.sensors.organizations import aws_organization_members_sensor

__all__ = [
    "aws_organization_members_sensor",
    "cloud_accounts_sensor",
    "last_sync_failure_sensor",
    "last_sync_success_sensor",
]
