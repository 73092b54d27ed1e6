"""A synthetic Azure tenant with subscriptions, served to the unchanged SDK path.

:class:`AzureCostManagementSandbox` answers Entra ID and Cost Management Query requests from a
deterministic generator; :class:`AzureSandboxTransport` plugs it into azure-core below every
policy, so ``ClientSecretCredential`` and ``CostManagementClient`` run as against Azure.
"""

from finops_pipeline.providers.azure.sandbox.catalogue import (
    DEFAULT_TENANTS,
    SandboxSubscription,
    SandboxTenant,
    sandbox_credentials,
    sandbox_tenant,
)
from finops_pipeline.providers.azure.sandbox.generator import AzureSandboxGenerator
from finops_pipeline.providers.azure.sandbox.service import (
    SANDBOX_AUTHORITY_HOST,
    SANDBOX_RESOURCE_MANAGER,
    AzureCostManagementSandbox,
    AzureSandboxSettings,
    SandboxResponse,
)
from finops_pipeline.providers.azure.sandbox.transport import (
    AzureSandboxTransport,
    InProcessTransport,
)

__all__ = [
    "DEFAULT_TENANTS",
    "SANDBOX_AUTHORITY_HOST",
    "SANDBOX_RESOURCE_MANAGER",
    "AzureCostManagementSandbox",
    "AzureSandboxGenerator",
    "AzureSandboxSettings",
    "AzureSandboxTransport",
    "InProcessTransport",
    "SandboxResponse",
    "SandboxSubscription",
    "SandboxTenant",
    "sandbox_credentials",
    "sandbox_tenant",
]
