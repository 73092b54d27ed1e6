"""Waiting out Cost Management's 429s the way the service asks.

Cost Management throttles per Entra tenant in query processing units (12 QPU per 10 s, 60 per
minute, 600 per hour). A 429 names its wait in its own headers: ``…-qpu-retry-after`` and, for
the other buckets, ``…-entity-``, ``…-tenant-`` or ``…-client-retry-after``. azure-core's
``RetryPolicy`` reads only ``retry-after``, ``retry-after-ms`` and ``x-ms-retry-after-ms``, and the
generated client does not retry the POST at all, so this policy sits right after the retry
policy: on a 429 it waits for the **largest** wait any header names, then sends the request
again, and gives up with a transient :class:`AzureThrottledError` when the wait exceeds its
bound or the retries run out.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import time
from collections.abc import Callable, Mapping

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

from finops_pipeline.providers.azure.errors import AzureThrottledError

logger = logging.getLogger(__name__)

_PREFIX = "x-ms-ratelimit-microsoft.costmanagement-"
#: Waits in seconds that a 429 may carry.
RETRY_AFTER_SECONDS_HEADERS: tuple[str, ...] = (
    f"{_PREFIX}qpu-retry-after",
    f"{_PREFIX}entity-retry-after",
    f"{_PREFIX}tenant-retry-after",
    f"{_PREFIX}client-retry-after",
    "retry-after",
)
#: Waits in milliseconds (azure-core's conventions).
RETRY_AFTER_MS_HEADERS: tuple[str, ...] = ("retry-after-ms", "x-ms-retry-after-ms")
QPU_CONSUMED_HEADER = f"{_PREFIX}qpu-consumed"
QPU_REMAINING_HEADER = f"{_PREFIX}qpu-remaining"

DEFAULT_MAX_WAIT_SECONDS = 60.0
DEFAULT_MAX_RETRIES = 4
#: Used when a 429 names no wait at all, doubled on each retry.
DEFAULT_FALLBACK_WAIT_SECONDS = 10.0


def _seconds(value: str, now: dt.datetime) -> float | None:
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - now).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)


def throttle_wait_seconds(
    headers: Mapping[str, str], *, now: dt.datetime | None = None
) -> float | None:
    """The largest wait the response's headers ask for, or None if none names one.

    ``retry-after`` may be an HTTP date; the others are seconds, or milliseconds for the
    ``-ms`` headers. Unreadable values are ignored.
    """
    current = now or dt.datetime.now(dt.UTC)
    lowered = {name.lower(): value for name, value in headers.items()}
    waits: list[float] = []
    for name in RETRY_AFTER_SECONDS_HEADERS:
        if name in lowered and (seconds := _seconds(lowered[name], current)) is not None:
            waits.append(seconds)
    for name in RETRY_AFTER_MS_HEADERS:
        if name in lowered and (millis := _seconds(lowered[name], current)) is not None:
            waits.append(millis / 1000.0)
    return max(waits) if waits else None


class CostManagementThrottlingPolicy(HTTPPolicy):
    """Retry 429s after the largest wait Cost Management names, within a bound.

    Args:
        max_wait_seconds: The longest single wait accepted; a longer one fails at once.
        max_retries: How many 429s in a row are waited out before giving up.
        fallback_wait_seconds: The first wait when a 429 names none; doubled each time.
        sleep: Called with the seconds to wait (tests pass a recorder).
    """

    def __init__(
        self,
        *,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        fallback_wait_seconds: float = DEFAULT_FALLBACK_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if max_wait_seconds < 0 or max_retries < 0 or fallback_wait_seconds < 0:
            raise ValueError("throttling bounds must not be negative")
        self.max_wait_seconds = max_wait_seconds
        self.max_retries = max_retries
        self.fallback_wait_seconds = fallback_wait_seconds
        self._sleep = sleep
        #: 429 responses seen, and the seconds spent waiting after them.
        self.throttled_responses = 0
        self.seconds_waited = 0.0

    def send(self, request: PipelineRequest) -> PipelineResponse:
        retries = 0
        while True:
            response = self.next.send(request)
            if response.http_response.status_code != 429:
                return response
            self.throttled_responses += 1
            named = throttle_wait_seconds(response.http_response.headers)
            wait = named if named is not None else self.fallback_wait_seconds * (2**retries)
            if wait > self.max_wait_seconds:
                raise AzureThrottledError(
                    f"Azure Cost Management asked to wait {wait:g} s after a 429, beyond the "
                    f"{self.max_wait_seconds:g} s bound. Its quotas are per Entra tenant (12 QPU "
                    "per 10 s, 60 per minute, 600 per hour); retry the run later."
                )
            if retries >= self.max_retries:
                raise AzureThrottledError(
                    f"Azure Cost Management kept answering 429 after {retries} waits. Its "
                    "quotas are per Entra tenant (12 QPU per 10 s, 60 per minute, 600 per "
                    "hour); retry the run later."
                )
            logger.info("Cost Management answered 429; waiting %.1f s before retrying", wait)
            self._sleep(wait)
            self.seconds_waited += wait
            retries += 1
