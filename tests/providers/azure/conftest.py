"""Azure fixtures: the sandbox tenant and real SDK clients whose transport it answers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.providers.azure.client import (
    AzureClientSecretCredentials,
    AzureEndpoints,
    ClientOptions,
    CostManagementQueryClient,
)
from finops_pipeline.providers.azure.query import CostScope
from finops_pipeline.providers.azure.sandbox import (
    DEFAULT_TENANTS,
    SANDBOX_AUTHORITY_HOST,
    SANDBOX_RESOURCE_MANAGER,
    AzureCostManagementSandbox,
    AzureSandboxSettings,
    AzureSandboxTransport,
    SandboxTenant,
    sandbox_credentials,
)
from finops_pipeline.providers.azure.throttling import CostManagementThrottlingPolicy

FIXTURES = Path(__file__).parent / "fixtures"
#: "Today" for the sandbox: March 2025 is open, and February until the 5th.
AS_OF = dt.date(2025, 3, 3)
TENANT: SandboxTenant = DEFAULT_TENANTS[0]
PRODUCTION = TENANT.subscriptions[0]
NO_READER = next(s for s in TENANT.subscriptions if not s.reader)
SANDBOX_ENDPOINTS = AzureEndpoints(SANDBOX_RESOURCE_MANAGER, SANDBOX_AUTHORITY_HOST)


def example_body_text(name: str) -> str:
    """The raw text of an official example's 200 response body, as the service would send it."""
    text = (FIXTURES / name).read_text()
    start = text.index("{", text.index('"body":'))
    _document, end = json.JSONDecoder(parse_float=Decimal).raw_decode(text, start)
    return text[start:end]


class SleepRecorder:
    """Stands in for ``time.sleep``: records the waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


ClientFactory = Callable[..., CostManagementQueryClient]


@pytest.fixture
def make_sandbox() -> Callable[..., AzureCostManagementSandbox]:
    def build(**settings: object) -> AzureCostManagementSandbox:
        settings.setdefault("as_of", AS_OF)
        return AzureCostManagementSandbox(AzureSandboxSettings(**settings))  # type: ignore[arg-type]

    return build


@pytest.fixture
def make_client(sleeps: SleepRecorder) -> Iterator[ClientFactory]:
    clients: list[CostManagementQueryClient] = []

    def build(
        sandbox: AzureCostManagementSandbox,
        *,
        credentials: AzureClientSecretCredentials | None = None,
        unreachable: bool = False,
        max_wait_seconds: float = 60.0,
        **extra: object,
    ) -> CostManagementQueryClient:
        client = CostManagementQueryClient(
            credentials or sandbox_credentials(TENANT),
            SANDBOX_ENDPOINTS,
            ClientOptions(
                transport_factory=lambda: AzureSandboxTransport(sandbox, unreachable=unreachable),
                throttling=CostManagementThrottlingPolicy(
                    max_wait_seconds=max_wait_seconds, sleep=sleeps
                ),
                retry_total=0,
                retry_backoff_factor=0.0,
                extra_client_kwargs=dict(extra),
            ),
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def production_scope() -> CostScope:
    return CostScope.subscription(PRODUCTION.subscription_id)
