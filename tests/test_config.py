"""The one configuration object: every FINOPS_* knob, parsed once, with typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from finops_pipeline import config
from finops_pipeline.config import ROOT_DEFAULT_HOME, FinopsConfig, finops_home
from finops_pipeline.errors import ConfigurationError


def test_finops_home_prefers_the_environment(tmp_path: Path) -> None:
    assert finops_home({"FINOPS_HOME": str(tmp_path)}) == tmp_path


def test_finops_home_for_a_normal_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert finops_home({}) == tmp_path / ".finops"


def test_finops_home_for_root_avoids_the_home_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "geteuid", lambda: 0)
    assert finops_home({}) == ROOT_DEFAULT_HOME == Path("/var/lib/finops")
    assert finops_home({"FINOPS_HOME": ""}) == ROOT_DEFAULT_HOME


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    parsed = FinopsConfig.from_env({"FINOPS_HOME": str(tmp_path)})
    assert parsed == FinopsConfig(home=tmp_path)
    assert (parsed.schedule_hour_utc, parsed.restatement_days, parsed.ce_max_attempts) == (6, 3, 8)
    assert parsed.retry_max is None
    assert parsed.schedule_accounts_per_run == 50
    assert (parsed.sensor_status, parsed.schedule_status) == ("running", "running")


def test_every_knob_is_read(tmp_path: Path) -> None:
    parsed = FinopsConfig.from_env(
        {
            "FINOPS_HOME": str(tmp_path),
            "FINOPS_SCHEDULE_HOUR_UTC": "2",
            "FINOPS_RESTATEMENT_DAYS": "5",
            "FINOPS_MONTH_REPULL_UNTIL_DAY": "0",
            "FINOPS_SYNC_INCLUDE_TODAY": "yes",
            "FINOPS_INITIAL_HISTORY_MONTHS": "off",
            "FINOPS_RETRY_MAX": "0",
            "FINOPS_RETRY_DELAY_SECONDS": "7.5",
            "FINOPS_SENSOR_INTERVAL_SECONDS": "45",
            "FINOPS_SENSOR_STATUS": "Stopped",
            "FINOPS_SCHEDULE_STATUS": "stopped",
            "FINOPS_CE_ENDPOINT_URL": " http://ce.local ",
            "FINOPS_STS_ENDPOINT_URL": "http://sts.local",
            "FINOPS_CE_MAX_ATTEMPTS": "1",
            "FINOPS_SCHEDULE_ACCOUNTS_PER_RUN": "200",
        }
    )
    assert parsed == FinopsConfig(
        home=tmp_path,
        schedule_hour_utc=2,
        restatement_days=5,
        month_repull_until_day=0,
        include_today=True,
        initial_history_months=None,
        retry_max=0,
        retry_delay_seconds=7.5,
        sensor_interval_seconds=45,
        sensor_status="stopped",
        schedule_status="stopped",
        ce_endpoint_url="http://ce.local",
        sts_endpoint_url="http://sts.local",
        ce_max_attempts=1,
        schedule_accounts_per_run=200,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FINOPS_RESTATEMENT_DAYS", "three"),
        ("FINOPS_RETRY_MAX", "-1"),
        ("FINOPS_RETRY_DELAY_SECONDS", "soon"),
        ("FINOPS_SENSOR_INTERVAL_SECONDS", "0"),
        ("FINOPS_SENSOR_STATUS", "paused"),
        ("FINOPS_SCHEDULE_STATUS", "on"),
        ("FINOPS_CE_MAX_ATTEMPTS", "21"),
        ("FINOPS_SCHEDULE_ACCOUNTS_PER_RUN", "0"),
        ("FINOPS_SCHEDULE_ACCOUNTS_PER_RUN", "many"),
    ],
)
def test_a_bad_knob_is_a_one_line_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        FinopsConfig.from_env({name: value})
