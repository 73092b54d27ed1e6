"""The data-trust knobs: the AWS reconciliation switch and the freshness lag per provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from finops_pipeline.config import FinopsConfig
from finops_pipeline.errors import ConfigurationError


def test_reconciliation_is_on_unless_switched_off(tmp_path: Path) -> None:
    home = {"FINOPS_HOME": str(tmp_path)}
    assert FinopsConfig.from_env(home).reconcile_aws is True
    for off in ("0", "off", "false", "no"):
        assert FinopsConfig.from_env({**home, "FINOPS_RECONCILE_AWS": off}).reconcile_aws is False
    assert FinopsConfig.from_env({**home, "FINOPS_RECONCILE_AWS": "1"}).reconcile_aws is True


def test_freshness_lags_name_only_the_providers_given(tmp_path: Path) -> None:
    home = {"FINOPS_HOME": str(tmp_path)}
    assert FinopsConfig.from_env(home).freshness_max_lag_days == {}
    parsed = FinopsConfig.from_env({**home, "FINOPS_FRESHNESS_MAX_LAG_DAYS": "aws=2, gcp=35"})
    assert parsed.freshness_max_lag_days == {"aws": 2, "gcp": 35}
    with pytest.raises(ConfigurationError, match="provider=days pairs"):
        FinopsConfig.from_env({**home, "FINOPS_FRESHNESS_MAX_LAG_DAYS": "aws:2"})
