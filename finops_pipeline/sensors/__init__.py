"""Sensors: account partitions and initial backfills, and last-sync bookkeeping."""

from finops_pipeline.sensors.accounts import cloud_accounts_sensor
from finops_pipeline.sensors.last_sync import last_sync_failure_sensor, last_sync_success_sensor

__all__ = ["cloud_accounts_sensor", "last_sync_failure_sensor", "last_sync_success_sensor"]
