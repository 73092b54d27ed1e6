"""The ``cost_data`` retry policy, tunable from the environment."""

from __future__ import annotations

from collections.abc import Mapping

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
