"""The 429 policy: wait for the largest of Cost Management's retry-after headers, within a bound."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest
from azure.core.pipeline import Pipeline
from azure.core.rest import HttpRequest

from finops_pipeline.providers.azure.errors import AzureThrottledError
from finops_pipeline.providers.azure.sandbox import InProcessTransport, SandboxResponse
from finops_pipeline.providers.azure.throttling import (
    CostManagementThrottlingPolicy,
    throttle_wait_seconds,
)
from tests.providers.azure.conftest import SleepRecorder

HOST = "https://management.throttle-test.invalid"
PREFIX = "x-ms-ratelimit-microsoft.costmanagement-"


class Script:
    """Answers with the given responses in turn, recording what was sent."""

    def __init__(self, *responses: SandboxResponse) -> None:
        self.responses = list(responses)
        self.bodies: list[bytes | str | None] = []

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None
    ) -> SandboxResponse:
        self.bodies.append(body)
        return self.responses.pop(0)


def throttled(**waits: str) -> SandboxResponse:
    headers = {name.replace("_", "-"): value for name, value in waits.items()}
    return SandboxResponse(429, headers, b'{"error":{"code":"429"}}')


OK = SandboxResponse(200, {"content-type": "application/json"}, b"{}")


def run(script: Script, policy: CostManagementThrottlingPolicy) -> int:
    pipeline = Pipeline(transport=InProcessTransport(script, [HOST]), policies=[policy])
    response = pipeline.run(HttpRequest("POST", f"{HOST}/query", content=b'{"a":1}'))
    return response.http_response.status_code


def test_a_429_waits_for_the_largest_header_then_retries(sleeps: SleepRecorder) -> None:
    script = Script(
        SandboxResponse(
            429,
            {
                f"{PREFIX}qpu-retry-after": "3",
                f"{PREFIX}entity-retry-after": "11",
                f"{PREFIX}tenant-retry-after": "5",
                f"{PREFIX}client-retry-after": "7",
                "retry-after": "1",
            },
        ),
        OK,
    )
    policy = CostManagementThrottlingPolicy(sleep=sleeps)

    assert run(script, policy) == 200
    assert sleeps.waits == [11.0]
    assert script.bodies == [b'{"a":1}', b'{"a":1}']  # the same request, sent again
    assert policy.throttled_responses == 1
    assert policy.seconds_waited == 11.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({f"{PREFIX}qpu-retry-after": "4"}, 4.0),
        ({f"{PREFIX}tenant-retry-after": "9", f"{PREFIX}qpu-retry-after": "4"}, 9.0),
        ({f"{PREFIX}client-retry-after": "12", "Retry-After": "2"}, 12.0),
        ({"retry-after-ms": "2500", f"{PREFIX}qpu-retry-after": "2"}, 2.5),
        ({"x-ms-retry-after-ms": "800"}, 0.8),
        ({"Retry-After": "Sat, 01 Mar 2025 12:00:30 GMT"}, 30.0),
        ({f"{PREFIX}qpu-retry-after": "soon", f"{PREFIX}entity-retry-after": "6"}, 6.0),
        ({"content-type": "application/json"}, None),
    ],
)
def test_wait_is_the_largest_readable_header(
    headers: dict[str, str], expected: float | None
) -> None:
    now = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert throttle_wait_seconds(headers, now=now) == expected


def test_a_wait_beyond_the_bound_fails_at_once_as_transient(sleeps: SleepRecorder) -> None:
    script = Script(throttled(**{f"{PREFIX}qpu-retry-after": "5", "retry-after": "300"}))
    policy = CostManagementThrottlingPolicy(max_wait_seconds=60, sleep=sleeps)

    with pytest.raises(AzureThrottledError) as raised:
        run(script, policy)

    assert raised.value.permanent is False
    assert "300 s" in str(raised.value) and "60 s bound" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert sleeps.waits == []


def test_retries_run_out_after_the_configured_number(sleeps: SleepRecorder) -> None:
    script = Script(*[throttled(**{f"{PREFIX}qpu-retry-after": "2"})] * 4, OK)
    policy = CostManagementThrottlingPolicy(max_retries=3, sleep=sleeps)

    with pytest.raises(AzureThrottledError, match="after 3 waits"):
        run(script, policy)
    assert sleeps.waits == [2.0, 2.0, 2.0]


def test_a_429_without_any_wait_backs_off_exponentially(sleeps: SleepRecorder) -> None:
    script = Script(throttled(), throttled(), OK)
    policy = CostManagementThrottlingPolicy(fallback_wait_seconds=1.5, sleep=sleeps)

    assert run(script, policy) == 200
    assert sleeps.waits == [1.5, 3.0]


def test_other_statuses_pass_through_untouched(sleeps: SleepRecorder) -> None:
    script = Script(SandboxResponse(503, {}, b""))
    assert run(script, CostManagementThrottlingPolicy(sleep=sleeps)) == 503
    assert sleeps.waits == []
