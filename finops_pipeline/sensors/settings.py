"""The sensors' and the schedule's knobs, as Dagster's types (parsed in ``finops_pipeline.config``)."""

import dagster as dg

from finops_pipeline.config import FinopsConfig

#: The job every requested run targets (defined in ``finops_pipeline.definitions``).
COST_DATA_JOB_NAME = "cost_data_job"


def sensor_interval_seconds() -> int:
    """Seconds between sensor ticks (default 30, Dagster's own default)."""
    return FinopsConfig.from_env().sensor_interval_seconds


def sensor_default_status() -> dg.DefaultSensorStatus:
    """Sensors run by default, so a deployment keeps partitions and last-sync in step."""
    running = FinopsConfig.from_env().sensor_status == "running"
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def schedule_default_status() -> dg.DefaultScheduleStatus:
    """The daily schedule runs by default; ``FINOPS_SCHEDULE_STATUS=stopped`` turns it off."""
    running = FinopsConfig.from_env().schedule_status == "running"
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
