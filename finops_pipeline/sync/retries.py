"""The ``cost_data`` retry policy, tunable from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from finops_pipeline.config import FinopsConfig
from finops_pipeline.errors import ConfigurationError

DEFAULT_MAX_RETRIES = 3


def retry_policy_from_env(environ: Mapping[str, str] | None = None) -> dg.RetryPolicy:
    """Exponential backoff with jitter; ``FINOPS_RETRY_MAX`` and ``FINOPS_RETRY_DELAY_SECONDS``."""
    return retry_policy(FinopsConfig.from_env(environ))


def retry_policy(config: FinopsConfig) -> dg.RetryPolicy:
    """The asset's retry policy: exponential backoff with jitter.

    Jitter spreads the retries of many accounts' runs that were throttled together.
    """
    max_retries = DEFAULT_MAX_RETRIES if config.retry_max is None else config.retry_max
    return dg.RetryPolicy(
        max_retries=max_retries,
        delay=config.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


# `finops sync` is interactive: a person waits for it, so its retries wait seconds, not minutes.
DEFAULT_SYNC_RETRIES = 2
DEFAULT_SYNC_RETRY_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class SyncRetrySettings:
    """How `finops sync` retries the accounts that failed transiently, each time in a new run.

    Attributes:
        max_retries: Retries after the first attempt; 0 turns retrying off.
        first_wait_seconds: The wait before the first retry; it doubles for each later one.
    """

    max_retries: int = DEFAULT_SYNC_RETRIES
    first_wait_seconds: float = DEFAULT_SYNC_RETRY_WAIT_SECONDS

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.first_wait_seconds < 0:
            raise ConfigurationError("Retries and the retry wait cannot be negative.")

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        return self.first_wait_seconds * 2 ** (retry - 1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SyncRetrySettings:
        """``FINOPS_RETRY_MAX`` sets the number of retries, as it does for the asset's runs."""
        return cls.from_config(FinopsConfig.from_env(environ))

    @classmethod
    def from_config(cls, config: FinopsConfig) -> SyncRetrySettings:
        """The deployment's ``FINOPS_RETRY_MAX``, else ``DEFAULT_SYNC_RETRIES``."""
        return cls() if config.retry_max is None else cls(max_retries=config.retry_max)
