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
        "tenants_sensor",
        "insights_automation_sensor",
    }
    weekly = repository.get_schedule_def("weekly_recommendations_refresh")
    assert (weekly.cron_schedule, weekly.job_name) == ("0 5 * * 1", "cost_recommendations_job")
    # GetAnomalies is paid and needs an anomaly monitor: its schedule is opt-in.
    provider = repository.get_schedule_def("daily_provider_anomalies")
    assert provider.default_status == dg.DefaultScheduleStatus.STOPPED
    assert repository.get_sensor_def("insights_automation_sensor").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    schedule = repository.get_schedule_def("daily_cost_sync")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "UTC")
    assert schedule.job_name == "cost_data_job"
    node = defs.resolve_asset_graph().get(dg.AssetKey("cost_data"))
    # One run per backfill (Dagster splits it along the smaller dimension), never one per key.
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.backfill_policy.policy_type.value == "SINGLE_RUN"
    assert node.backfill_policy.max_partitions_per_run is None
    from finops_pipeline.assets import cost_data

    assert cost_data.op.pool == "cost_explorer"


def test_knobs_come_from_the_environment_with_documented_defaults() -> None:
    # Fresh interpreters, because the decorators read the knobs when the modules load.
    script = (
        "from finops_pipeline.definitions import defs\n"
        "from finops_pipeline.assets import cost_data\n"
        "r = defs.get_repository_def()\n"
        "s = r.get_schedule_def('daily_cost_sync')\n"
        "p = cost_data.op.retry_policy\n"
        "print(s.cron_schedule, s.default_status.value,"
        " r.get_sensor_def('cloud_accounts_sensor').default_status.value,"
        " r.get_sensor_def('cloud_accounts_sensor').minimum_interval_seconds,"
        " p.max_retries, p.delay, p.backoff.value, p.jitter.value)\n"
    )

    def knobs(**env: str) -> list[str]:
        return subprocess.run(
            [sys.executable, "-c", script],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    assert knobs() == [
        *("0", "6", "*", "*", "*", "RUNNING", "RUNNING", "30"),
        *("3", "20.0", "EXPONENTIAL", "PLUS_MINUS"),
    ]
    tuned = knobs(
        FINOPS_SCHEDULE_HOUR_UTC="2",
        FINOPS_SCHEDULE_STATUS="stopped",
        FINOPS_SENSOR_STATUS="stopped",
        FINOPS_SENSOR_INTERVAL_SECONDS="45",
        FINOPS_RETRY_MAX="0",
        FINOPS_RETRY_DELAY_SECONDS="7.5",
    )
    assert tuned == [
        *("0", "2", "*", "*", "*", "STOPPED", "STOPPED", "45"),
        *("0", "7.5", "EXPONENTIAL", "PLUS_MINUS"),
    ]
