"""Environment knobs shared by the sensors and the schedule."""

import os

import dagster as dg

from finops_pipeline.errors import ConfigurationError

#: The job every requested run targets (defined in ``finops_pipeline.definitions``).
COST_DATA_JOB_NAME = "cost_data_job"

ENV_SENSOR_INTERVAL = "FINOPS_SENSOR_INTERVAL_SECONDS"
ENV_SENSOR_STATUS = "FINOPS_SENSOR_STATUS"
ENV_SCHEDULE_STATUS = "FINOPS_SCHEDULE_STATUS"


def sensor_interval_seconds() -> int:
    """Seconds between sensor ticks (default 30, Dagster's own default)."""
    text = os.environ.get(ENV_SENSOR_INTERVAL, "").strip() or "30"
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigurationError(f"{ENV_SENSOR_INTERVAL} must be a positive whole number.")
    return seconds


def _status(name: str) -> dg.DefaultSensorStatus:
    text = os.environ.get(name, "").strip().lower() or "running"
    if text not in ("running", "stopped"):
        raise ConfigurationError(f"{name} must be 'running' or 'stopped', not {text!r}.")
    return dg.DefaultSensorStatus.RUNNING if text == "running" else dg.DefaultSensorStatus.STOPPED


def sensor_default_status() -> dg.DefaultSensorStatus:
    """Sensors run by default, so a deployment keeps partitions and last-sync in step."""
    return _status(ENV_SENSOR_STATUS)


def schedule_default_status() -> dg.DefaultScheduleStatus:
    """The daily schedule runs by default; ``FINOPS_SCHEDULE_STATUS=stopped`` turns it off."""
    running = _status(ENV_SCHEDULE_STATUS) == dg.DefaultSensorStatus.RUNNING
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
