"""The code location loads with its sensors, schedule, job and retry policy, touching nothing."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg


def test_definitions_hold_the_automation() -> None:
    from finops_pipeline.definitions import defs

    repository = defs.get_repository_def()
    assert {sensor.name for sensor in repository.sensor_defs} == {
        "cloud_accounts_sensor",
        "last_sync_success_sensor",
        "last_sync_failure_sensor",
    }
    schedule = repository.get_schedule_def("daily_cost_sync")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "UTC")
    assert schedule.job_name == "cost_data_job"
    node = defs.resolve_asset_graph().get(dg.AssetKey("cost_data"))
    assert node.backfill_policy is not None
    from finops_pipeline.assets import cost_data

    op = cost_data.op
    assert op.pool == "cost_explorer"
    assert op.retry_policy is not None
    assert op.retry_policy.backoff == dg.Backoff.EXPONENTIAL


def test_schedule_hour_and_default_states_come_from_the_environment() -> None:
    # A fresh interpreter, because the decorators read the knobs when the module loads.
    script = (
        "from finops_pipeline.definitions import defs\n"
        "r = defs.get_repository_def()\n"
        "s = r.get_schedule_def('daily_cost_sync')\n"
        "print(s.cron_schedule, s.default_status.value,"
        " r.get_sensor_def('cloud_accounts_sensor').default_status.value,"
        " r.get_sensor_def('cloud_accounts_sensor').minimum_interval_seconds)\n"
    )
    env = {
        "FINOPS_SCHEDULE_HOUR_UTC": "2",
        "FINOPS_SCHEDULE_STATUS": "stopped",
        "FINOPS_SENSOR_STATUS": "stopped",
        "FINOPS_SENSOR_INTERVAL_SECONDS": "45",
        "PATH": "/usr/bin:/bin",
    }
    output = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert output == ["0", "2", "*", "*", "*", "STOPPED", "STOPPED", "45"]
