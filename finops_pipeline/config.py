"""Every ``FINOPS_*`` environment knob, read once into one typed, frozen object.

Secrets (``ENCRYPTION_KEY``, ``FINOPS_PIPELINE_AWS_*`` keys, ``DATABASE_URL``) are not here:
resources bind them with ``dg.EnvVar`` so Dagster resolves them inside the run and never shows
their values. The sandbox's own ``FINOPS_SANDBOX_*`` knobs stay on its ``SandboxSettings``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from finops_pipeline.errors import ConfigurationError

if TYPE_CHECKING:
    import dagster as dg
from finops_pipeline.providers.aws.constants import CE_MAX_ATTEMPTS

ENV_HOME = "FINOPS_HOME"
ENV_SCHEDULE_HOUR = "FINOPS_SCHEDULE_HOUR_UTC"
ENV_RESTATEMENT_DAYS = "FINOPS_RESTATEMENT_DAYS"
ENV_MONTH_REPULL_UNTIL_DAY = "FINOPS_MONTH_REPULL_UNTIL_DAY"
ENV_INCLUDE_TODAY = "FINOPS_SYNC_INCLUDE_TODAY"
ENV_INITIAL_HISTORY_MONTHS = "FINOPS_INITIAL_HISTORY_MONTHS"
ENV_RETRY_MAX = "FINOPS_RETRY_MAX"
ENV_RETRY_DELAY = "FINOPS_RETRY_DELAY_SECONDS"
ENV_SENSOR_INTERVAL = "FINOPS_SENSOR_INTERVAL_SECONDS"
ENV_SENSOR_STATUS = "FINOPS_SENSOR_STATUS"
ENV_SCHEDULE_STATUS = "FINOPS_SCHEDULE_STATUS"
ENV_CE_ENDPOINT_URL = "FINOPS_CE_ENDPOINT_URL"
ENV_STS_ENDPOINT_URL = "FINOPS_STS_ENDPOINT_URL"
#: botocore's retries of one throttled or failed Cost Explorer request, before the run's own.
ENV_CE_MAX_ATTEMPTS = "FINOPS_CE_MAX_ATTEMPTS"
ENV_SCHEDULE_ACCOUNTS_PER_RUN = "FINOPS_SCHEDULE_ACCOUNTS_PER_RUN"
#: The reconciliation's ungrouped GetCostAndUsage total per account and window (one more paid
#: request each); on unless set to 0/off/false.
ENV_RECONCILE_AWS = "FINOPS_RECONCILE_AWS"
#: The reconciliation's ungrouped Daily ActualCost query per subscription and query window
#: (not billed; it consumes QPU); on unless set to 0/off/false.
ENV_RECONCILE_AZURE = "FINOPS_RECONCILE_AZURE"
#: How many days old an account's latest final day may be before the freshness check fails
#: ("aws=6,azure=40"); unset providers keep their defaults.
ENV_FRESHNESS_MAX_LAG_DAYS = "FINOPS_FRESHNESS_MAX_LAG_DAYS"
#: Day of the next month until which Azure may still change a month's costs.
ENV_AZURE_MONTH_CLOSE_DAY = "FINOPS_AZURE_MONTH_CLOSE_DAY"

#: Default home for root. Its parents (``/var``, ``/var/lib``) are 0755 on every mainstream
#: distribution, so pgserver's chmod of the data folder's parents changes nothing.
ROOT_DEFAULT_HOME = Path("/var/lib/finops")

# Cost Explorer keeps daily data for the current month plus this many previous months.
CE_DAILY_HISTORY_PREVIOUS_MONTHS = 13

DEFAULT_SCHEDULE_HOUR_UTC = 6
DEFAULT_RESTATEMENT_DAYS = 3
DEFAULT_MONTH_REPULL_UNTIL_DAY = 5
# Azure data changes until about the 5th of the following month.
DEFAULT_AZURE_MONTH_CLOSE_DAY = 5
DEFAULT_INITIAL_HISTORY_MONTHS = CE_DAILY_HISTORY_PREVIOUS_MONTHS
# Cost Explorer throttling clears within a minute or so: 20 s, 40 s, 80 s (± jitter).
DEFAULT_RETRY_DELAY_SECONDS = 20.0
# Dagster's own default tick interval.
DEFAULT_SENSOR_INTERVAL_SECONDS = 30
#: Accounts sharing a window that one daily run loads. A run costs 10-18 s of bookkeeping
#: through the daemon against well under a second per account's daily window; 50 keeps a
#: run to about a minute, and a failed run's retry re-reads only its failed accounts.
DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN = 50
MAX_SCHEDULE_ACCOUNTS_PER_RUN = 1000

_OFF = frozenset({"off", "none", "no", "false", "disabled"})
_OFF_SWITCH = _OFF | {"0"}
_TRUE = frozenset({"1", "true", "yes", "on"})

Status = Literal["running", "stopped"]


def running_as_root() -> bool:
    """Return True when the process runs with effective uid 0."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def finops_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return the folder that holds the embedded server's data, the local key and lock files.

    ``FINOPS_HOME`` wins when set. Otherwise a normal user gets ``~/.finops``. Root gets
    ``/var/lib/finops`` instead of ``/root/.finops``: pgserver, run as root, makes every
    parent of its data folder group/world readable and traversable, which would silently open
    up ``/root`` (0700 -> 0755). ``/var`` and ``/var/lib`` are already 0755, so nothing changes.

    Args:
        environ: Environment to read; defaults to ``os.environ``.

    Returns:
        An absolute path; the folder may not exist yet.
    """
    env = os.environ if environ is None else environ
    configured = env.get(ENV_HOME, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    if running_as_root():
        return ROOT_DEFAULT_HOME
    return Path.home() / ".finops"


@dataclass(frozen=True)
class FinopsConfig:
    """The deployment's knobs, parsed and type-checked; unset ones keep their defaults.

    Range checks that belong to a domain type stay on it (``SyncPolicy`` checks the schedule
    hour and the windows), so a policy built in code is checked the same way.

    Attributes:
        home: ``FINOPS_HOME``: the embedded server's data, the local key, the sandbox's files.
        schedule_hour_utc: ``FINOPS_SCHEDULE_HOUR_UTC``.
        restatement_days: ``FINOPS_RESTATEMENT_DAYS``.
        month_repull_until_day: ``FINOPS_MONTH_REPULL_UNTIL_DAY``.
        include_today: ``FINOPS_SYNC_INCLUDE_TODAY``.
        initial_history_months: ``FINOPS_INITIAL_HISTORY_MONTHS``; None when turned off.
        retry_max: ``FINOPS_RETRY_MAX``; None when unset, since the asset's runs and
            ``finops sync`` default differently.
        retry_delay_seconds: ``FINOPS_RETRY_DELAY_SECONDS``.
        sensor_interval_seconds: ``FINOPS_SENSOR_INTERVAL_SECONDS``.
        sensor_status: ``FINOPS_SENSOR_STATUS``.
        schedule_status: ``FINOPS_SCHEDULE_STATUS``.
        ce_endpoint_url: ``FINOPS_CE_ENDPOINT_URL``.
        sts_endpoint_url: ``FINOPS_STS_ENDPOINT_URL``.
        ce_max_attempts: ``FINOPS_CE_MAX_ATTEMPTS``.
        schedule_accounts_per_run: ``FINOPS_SCHEDULE_ACCOUNTS_PER_RUN``: the most accounts
            sharing a window that one daily run loads (1 for one run per account).
        reconcile_aws: ``FINOPS_RECONCILE_AWS``.
        reconcile_azure: ``FINOPS_RECONCILE_AZURE``.
        freshness_max_lag_days: ``FINOPS_FRESHNESS_MAX_LAG_DAYS``, per provider; only the
            providers it names.
        azure_month_close_day: ``FINOPS_AZURE_MONTH_CLOSE_DAY``.
    """

    home: Path
    schedule_hour_utc: int = DEFAULT_SCHEDULE_HOUR_UTC
    restatement_days: int = DEFAULT_RESTATEMENT_DAYS
    month_repull_until_day: int = DEFAULT_MONTH_REPULL_UNTIL_DAY
    include_today: bool = False
    initial_history_months: int | None = DEFAULT_INITIAL_HISTORY_MONTHS
    retry_max: int | None = None
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS
    sensor_interval_seconds: int = DEFAULT_SENSOR_INTERVAL_SECONDS
    sensor_status: Status = "running"
    schedule_status: Status = "running"
    ce_endpoint_url: str | None = None
    sts_endpoint_url: str | None = None
    ce_max_attempts: int = CE_MAX_ATTEMPTS
    schedule_accounts_per_run: int = DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN
    reconcile_aws: bool = True
    reconcile_azure: bool = True
    freshness_max_lag_days: Mapping[str, int] = field(default_factory=dict)
    azure_month_close_day: int = DEFAULT_AZURE_MONTH_CLOSE_DAY

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FinopsConfig:
        """Read every knob from ``environ`` (``os.environ`` by default).

        Raises:
            ConfigurationError: A knob is malformed; the message names it and what it takes.
        """
        env = os.environ if environ is None else environ
        retry_max, retry_delay = _retries(env)
        return cls(
            home=finops_home(env),
            schedule_hour_utc=_int(env, ENV_SCHEDULE_HOUR, DEFAULT_SCHEDULE_HOUR_UTC),
            restatement_days=_int(env, ENV_RESTATEMENT_DAYS, DEFAULT_RESTATEMENT_DAYS),
            month_repull_until_day=_int(
                env, ENV_MONTH_REPULL_UNTIL_DAY, DEFAULT_MONTH_REPULL_UNTIL_DAY
            ),
            include_today=_text(env, ENV_INCLUDE_TODAY).lower() in _TRUE,
            initial_history_months=_initial_history_months(env),
            retry_max=retry_max,
            retry_delay_seconds=retry_delay,
            sensor_interval_seconds=_sensor_interval(env),
            sensor_status=_status(env, ENV_SENSOR_STATUS),
            schedule_status=_status(env, ENV_SCHEDULE_STATUS),
            ce_endpoint_url=_text(env, ENV_CE_ENDPOINT_URL) or None,
            sts_endpoint_url=_text(env, ENV_STS_ENDPOINT_URL) or None,
            ce_max_attempts=_ce_max_attempts(env),
            schedule_accounts_per_run=_schedule_accounts_per_run(env),
            reconcile_aws=_text(env, ENV_RECONCILE_AWS).lower() not in _OFF_SWITCH,
            reconcile_azure=_text(env, ENV_RECONCILE_AZURE).lower() not in _OFF_SWITCH,
            freshness_max_lag_days=_max_lag_days(env),
            azure_month_close_day=_azure_month_close_day(env),
        )

    def sensor_default_status(self) -> dg.DefaultSensorStatus:
        """``sensor_status`` as Dagster's type: sensors run by default, so a deployment keeps
        partitions and last-sync in step."""
        import dagster as dg  # only the definitions need Dagster's types; the CLI loads this

        running = self.sensor_status == "running"
        return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED

    def schedule_default_status(self) -> dg.DefaultScheduleStatus:
        """``schedule_status`` as Dagster's type; ``FINOPS_SCHEDULE_STATUS=stopped`` turns the
        schedules off."""
        import dagster as dg

        running = self.schedule_status == "running"
        return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED

    def endpoints(self) -> dict[str, str | None]:
        """The endpoint overrides a provider's validation probe receives, by name."""
        return {"ce_endpoint_url": self.ce_endpoint_url, "sts_endpoint_url": self.sts_endpoint_url}


def _text(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = _text(environ, name)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {text!r}.") from None


def _initial_history_months(environ: Mapping[str, str]) -> int | None:
    if _text(environ, ENV_INITIAL_HISTORY_MONTHS).lower() in _OFF:
        return None
    return _int(environ, ENV_INITIAL_HISTORY_MONTHS, DEFAULT_INITIAL_HISTORY_MONTHS)


def _retries(environ: Mapping[str, str]) -> tuple[int | None, float]:
    max_text = _text(environ, ENV_RETRY_MAX)
    delay_text = _text(environ, ENV_RETRY_DELAY)
    try:
        max_retries = int(max_text) if max_text else None
        delay = float(delay_text) if delay_text else DEFAULT_RETRY_DELAY_SECONDS
    except ValueError:
        raise ConfigurationError(
            f"{ENV_RETRY_MAX} must be a whole number and {ENV_RETRY_DELAY} a number of seconds."
        ) from None
    if (max_retries is not None and max_retries < 0) or delay < 0:
        raise ConfigurationError(f"{ENV_RETRY_MAX} and {ENV_RETRY_DELAY} cannot be negative.")
    return max_retries, delay


def _sensor_interval(environ: Mapping[str, str]) -> int:
    text = _text(environ, ENV_SENSOR_INTERVAL) or str(DEFAULT_SENSOR_INTERVAL_SECONDS)
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigurationError(f"{ENV_SENSOR_INTERVAL} must be a positive whole number.")
    return seconds


def _status(environ: Mapping[str, str], name: str) -> Status:
    text = _text(environ, name).lower() or "running"
    if text == "running":
        return "running"
    if text == "stopped":
        return "stopped"
    raise ConfigurationError(f"{name} must be 'running' or 'stopped', not {text!r}.")


def _ce_max_attempts(environ: Mapping[str, str]) -> int:
    text = _text(environ, ENV_CE_MAX_ATTEMPTS)
    if not text:
        return CE_MAX_ATTEMPTS
    if not text.isdigit() or not 1 <= int(text) <= 20:
        raise ConfigurationError(f"{ENV_CE_MAX_ATTEMPTS} must be a whole number from 1 to 20.")
    return int(text)


def _schedule_accounts_per_run(environ: Mapping[str, str]) -> int:
    text = _text(environ, ENV_SCHEDULE_ACCOUNTS_PER_RUN)
    if not text:
        return DEFAULT_SCHEDULE_ACCOUNTS_PER_RUN
    if not text.isdigit() or not 1 <= int(text) <= MAX_SCHEDULE_ACCOUNTS_PER_RUN:
        raise ConfigurationError(
            f"{ENV_SCHEDULE_ACCOUNTS_PER_RUN} must be a whole number from 1 to "
            f"{MAX_SCHEDULE_ACCOUNTS_PER_RUN}."
        )
    return int(text)


def _max_lag_days(environ: Mapping[str, str]) -> dict[str, int]:
    text = _text(environ, ENV_FRESHNESS_MAX_LAG_DAYS)
    lags: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        provider, _, days = part.partition("=")
        if not provider.strip() or not days.strip().isdigit():
            raise ConfigurationError(
                f"{ENV_FRESHNESS_MAX_LAG_DAYS} takes provider=days pairs, e.g. "
                f"'aws=6,azure=40', not {text!r}."
            )
        lags[provider.strip()] = int(days)
    return lags


def _azure_month_close_day(environ: Mapping[str, str]) -> int:
    day = _int(environ, ENV_AZURE_MONTH_CLOSE_DAY, DEFAULT_AZURE_MONTH_CLOSE_DAY)
    if not 1 <= day <= 28:
        raise ConfigurationError(
            f"{ENV_AZURE_MONTH_CLOSE_DAY} must be a day of the month from 1 to 28."
        )
    return day
