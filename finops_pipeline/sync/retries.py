"""The ``cost_data`` retry policy, tunable from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from finops_pipeline.errors import ConfigurationError

ENV_RETRY_MAX = "FINOPS_RETRY_MAX"
ENV_RETRY_DELAY = "FINOPS_RETRY_DELAY_SECONDS"

DEFAULT_MAX_RETRIES = 3
# Cost Explorer throttling clears within a minute or so: 20 s, 40 s, 80 s (± jitter).
DEFAULT_DELAY_SECONDS = 20.0


def retry_policy_from_env(environ: Mapping[str, str]) -> dg.RetryPolicy:
    """Exponential backoff with jitter; ``FINOPS_RETRY_MAX`` and ``FINOPS_RETRY_DELAY_SECONDS``.

    Jitter spreads the retries of many accounts' runs that were throttled together.
    """
    try:
        max_retries = int(environ.get(ENV_RETRY_MAX, "").strip() or DEFAULT_MAX_RETRIES)
        delay = float(environ.get(ENV_RETRY_DELAY, "").strip() or DEFAULT_DELAY_SECONDS)
    except ValueError:
        raise ConfigurationError(
            f"{ENV_RETRY_MAX} must be a whole number and {ENV_RETRY_DELAY} a number of seconds."
        ) from None
    if max_retries < 0 or delay < 0:
        raise ConfigurationError(f"{ENV_RETRY_MAX} and {ENV_RETRY_DELAY} cannot be negative.")
    return dg.RetryPolicy(
        max_retries=max_retries,
        delay=delay,
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
    def from_env(cls, environ: Mapping[str, str]) -> SyncRetrySettings:
        """``FINOPS_RETRY_MAX`` sets the number of retries, as it does for the asset's runs."""
        text = environ.get(ENV_RETRY_MAX, "").strip()
        if not text:
            return cls()
        try:
            return cls(max_retries=int(text))
        except ValueError:
            raise ConfigurationError(f"{ENV_RETRY_MAX} must be a whole number.") from None
